-- Unexpected firmware states raised at ingest that still hold: the device's latest report
-- (stored, or quarantined as unparsable) still shows the version and image of the event.
-- grain: one row per open security event (device, kind, version, image_hash)
-- columns: as firmware_security_events; latest_report_at (UTC) of the device
create view firmware_security_open as
with latest as (
    select device_id, max(seen_at) as latest_report_at
    from (select device_id, reported_at as seen_at from firmware_device_state
          union all
          select device_id, last_reported_at from firmware_security_events)
    group by device_id
),
final as (
    select e.*, l.latest_report_at
    from firmware_security_events e
    join latest l on l.device_id = e.device_id
    where e.last_reported_at >= l.latest_report_at
)
select * from final
