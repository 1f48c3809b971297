-- Inventory: the firmware each device runs now (its latest report) and since when.
-- Reads firmware_device_state, which the ingest-time check maintains (Firmware.ingest_reports,
-- the post-ingest hook, or analyze / check_reports for batches not checked yet).
-- grain: one row per device in devices (version null when it has no checked report)
-- columns: version and image_hash as last reported; reported_at (UTC) of that report;
--   on_version_since (UTC): first report of the current uninterrupted run of this version;
--   days_on_version (d) from on_version_since to firmware_params.as_of; n_reports (count)
create view firmware_current as
with state as (
    select * from firmware_device_state
),
final as (
    select d.device_id, d.manufacturer, d.model, d.hardware_rev, d.site, d.zone,
           s.version, s.image_hash, s.reported_at, s.on_version_since,
           round(date_diff('second', s.on_version_since, p.as_of) / 86400.0, 2)
               as days_on_version,
           coalesce(s.n_reports, 0) as n_reports
    from devices d
    left join state s on s.device_id = d.device_id
    cross join firmware_params p
)
select * from final
