-- What ingest rejected, one row per rejected input row, with its raw text whole (before
-- migration 991 this was a table, and it keeps that table's columns): a live payload's
-- text is kept in text_pieces and put together here, in order. Two branches, so that a
-- query's filters reach quarantine_rows first and only the rows it keeps are put
-- together (a correlated subquery put every text together for any query that read raw).
-- grain: one row per rejected input row
-- columns: batch_id (the ingest batch), kind, source, reason (short code), detail
--          (a sentence), raw (the row as JSON text exactly as received),
--          quarantined_at timestamptz
create view quarantine as
with in_the_row as (
    select batch_id, kind, source, reason, detail, raw, quarantined_at
    from quarantine_rows
    where raw_text_id is null
),

in_pieces as (
    select
        q.batch_id,
        q.kind,
        q.source,
        q.reason,
        q.detail,
        string_agg(p.text, '' order by p.piece) as raw,
        q.quarantined_at
    from quarantine_rows as q
    left join text_pieces as p on p.text_id = q.raw_text_id
    where q.raw_text_id is not null
    group by q.raw_text_id, q.batch_id, q.kind, q.source, q.reason, q.detail, q.quarantined_at
),

final as (
    select * from in_the_row
    union all
    select * from in_pieces
)

select * from final
