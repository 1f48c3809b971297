-- The payloads live ingest received with unmapped fields, each once, with its text whole
-- (before migration 993 this was a table, and it keeps that table's columns): a new
-- payload's text is kept in text_pieces and put together here, in order (two branches,
-- as in quarantine: a query's filters reach unmapped_payload_rows first).
-- grain: one row per received payload with unmapped fields
-- columns: payload_sha256 (SHA-256 of all its bytes, hex), payload (text as received, or
--          base64: and base64 for binary; cut at 16 KiB with the bytes received)
create view unmapped_payloads as
with in_the_row as (
    select payload_sha256, payload
    from unmapped_payload_rows
    where payload_text_id is null
),

in_pieces as (
    select
        u.payload_sha256,
        string_agg(p.text, '' order by p.piece) as payload
    from unmapped_payload_rows as u
    left join text_pieces as p on p.text_id = u.payload_text_id
    where u.payload_text_id is not null
    group by u.payload_text_id, u.payload_sha256
),

final as (
    select * from in_the_row
    union all
    select * from in_pieces
)

select * from final
