-- What live ingest received but could not map: one line per field name, so a
-- missing profile entry or an unknown unit shows up with its count.
-- grain: one row per format, field and reason of the unmapped table
-- columns: n_fields count, n_devices count, first_received_at / last_received_at timestamptz,
--          example_value text, example_payload text
create view unmapped_fields as
with fields as (
    select format, field, reason, device_id, value, payload, received_at
    from unmapped
),

final as (
    select
        format,
        field,
        reason,
        count(*) as n_fields,
        count(distinct device_id) as n_devices,
        min(received_at) as first_received_at,
        max(received_at) as last_received_at,
        any_value(value) as example_value,
        any_value(payload) as example_payload
    from fields
    group by format, field, reason
)

select * from final
