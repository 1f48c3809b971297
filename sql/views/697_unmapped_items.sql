-- The fields live ingest received and could not map, with their texts whole (before
-- migration 993 this was a table, and it keeps that table's columns): a name, value or
-- unit of more than 64 characters is kept in text_pieces and put together here, in order.
-- grain: one row per field of a received payload that no mapping turned into a row
-- columns: payload_sha256, item (position in the payload), received_at timestamptz,
--          transport, source, format, device_id, observed_at timestamp, field, value
--          (as text), unit, reason
create view unmapped_items as
with final as (
    select
        i.payload_sha256,
        i.item,
        i.received_at,
        i.transport,
        i.source,
        i.format,
        i.device_id,
        i.observed_at,
        coalesce(i.field, (
            select string_agg(p.text, '' order by p.piece)
            from text_pieces as p
            where p.text_id = i.field_text_id
        )) as field,
        coalesce(i.value, (
            select string_agg(p.text, '' order by p.piece)
            from text_pieces as p
            where p.text_id = i.value_text_id
        )) as value,
        coalesce(i.unit, (
            select string_agg(p.text, '' order by p.piece)
            from text_pieces as p
            where p.text_id = i.unit_text_id
        )) as unit,
        i.reason
    from unmapped_item_rows as i
)

select * from final
