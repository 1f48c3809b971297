-- The fields live ingest received and could not map, with their texts whole (before
-- migration 994 this was a table, and it keeps that table's columns): a name, value or
-- unit of more than 64 characters is kept in text_pieces and put together here, in order
-- (two branches, as in quarantine: a query's filters reach unmapped_item_rows first).
-- grain: one row per field of a received payload that no mapping turned into a row
-- columns: payload_sha256, item (position in the payload), received_at timestamptz,
--          transport, source, format, device_id, observed_at timestamp, field, value
--          (as text), unit, reason
create view unmapped_items as
with in_the_row as (
    select
        payload_sha256, item, received_at, transport, source, format, device_id,
        observed_at, field, value, unit, reason
    from unmapped_item_rows
    where field_text_id is null and value_text_id is null and unit_text_id is null
),

long_texts as (
    -- one row per item and text of it in text_pieces
    select
        *,
        unnest([field_text_id, value_text_id, unit_text_id]) as text_id
    from unmapped_item_rows
    where field_text_id is not null or value_text_id is not null or unit_text_id is not null
),

in_pieces as (
    select
        i.payload_sha256,
        i.item,
        i.received_at,
        i.transport,
        i.source,
        i.format,
        i.device_id,
        i.observed_at,
        coalesce(i.field, string_agg(p.text, '' order by p.piece)
            filter (where p.text_id = i.field_text_id)) as field,
        coalesce(i.value, string_agg(p.text, '' order by p.piece)
            filter (where p.text_id = i.value_text_id)) as value,
        coalesce(i.unit, string_agg(p.text, '' order by p.piece)
            filter (where p.text_id = i.unit_text_id)) as unit,
        i.reason
    from long_texts as i
    left join text_pieces as p on p.text_id = i.text_id
    group by
        i.field_text_id, i.value_text_id, i.unit_text_id, i.payload_sha256, i.item,
        i.received_at, i.transport, i.source, i.format, i.device_id, i.observed_at,
        i.field, i.value, i.unit, i.reason
),

final as (
    select * from in_the_row
    union all
    select * from in_pieces
)

select * from final
