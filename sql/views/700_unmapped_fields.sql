-- What live ingest received but could not map: one line per field name, so a
-- missing profile entry or an unknown unit shows up with its count.
-- grain: one row per format, field and reason of the unmapped table
-- columns: n_fields count, n_devices count, first_received_at / last_received_at timestamptz,
--          example_value text, example_payload text
create view unmapped_fields as
with fields as (
    select format, field, reason, device_id, value, payload_sha256, received_at
    from unmapped_items
),

grouped as (
    select
        format,
        field,
        reason,
        count(*) as n_fields,
        count(distinct device_id) as n_devices,
        min(received_at) as first_received_at,
        max(received_at) as last_received_at,
        any_value(value) as example_value,
        any_value(payload_sha256) as example_sha256
    from fields
    group by format, field, reason
),

-- the example payload's text only: put together once per line, not once per field
final as (
    select
        g.format,
        g.field,
        g.reason,
        g.n_fields,
        g.n_devices,
        g.first_received_at,
        g.last_received_at,
        g.example_value,
        p.payload as example_payload
    from grouped as g
    left join unmapped_payloads as p on p.payload_sha256 = g.example_sha256
    qualify row_number() over (partition by g.format, g.field, g.reason) = 1
)

select * from final
