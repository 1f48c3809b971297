-- What ingest rejected, one row per rejected input row, with its raw text whole (before
-- migration 991 this was a table, and it keeps that table's columns): a live payload's
-- text is kept in text_pieces and put together here, in order.
-- grain: one row per rejected input row
-- columns: batch_id (the ingest batch), kind, source, reason (short code), detail
--          (a sentence), raw (the row as JSON text exactly as received),
--          quarantined_at timestamptz
create view quarantine as
with final as (
    select
        q.batch_id,
        q.kind,
        q.source,
        q.reason,
        q.detail,
        coalesce(q.raw, (
            select string_agg(p.text, '' order by p.piece)
            from text_pieces as p
            where p.text_id = q.raw_text_id
        )) as raw,
        q.quarantined_at
    from quarantine_rows as q
)

select * from final
