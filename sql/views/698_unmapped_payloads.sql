-- The payloads live ingest received with unmapped fields, each once, with its text whole
-- (before migration 992 this was a table, and it keeps that table's columns): a new
-- payload's text is kept in text_pieces and put together here, in order.
-- grain: one row per received payload with unmapped fields
-- columns: payload_sha256 (SHA-256 of all its bytes, hex), payload (text as received, or
--          base64: and base64 for binary; cut at 16 KiB with the bytes received)
create view unmapped_payloads as
with final as (
    select
        u.payload_sha256,
        coalesce(u.payload, (
            select string_agg(p.text, '' order by p.piece)
            from text_pieces as p
            where p.text_id = u.payload_text_id
        )) as payload
    from unmapped_payload_rows as u
)

select * from final
