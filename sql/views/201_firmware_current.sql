-- Inventory: the firmware each device runs now (its latest report) and since when.
-- grain: one row per device in devices (version null when it never reported)
-- columns: version and image_hash as last reported; reported_at (UTC) of that report;
--   on_version_since (UTC): first report of the current uninterrupted run of this version;
--   days_on_version (d) from on_version_since to firmware_params.as_of; n_reports (count)
create view firmware_current as
with latest as (
    select device_id,
           max(reported_at) as reported_at,
           arg_max(version, reported_at) as version,
           arg_max(image_hash, reported_at) as image_hash,
           count(*) as n_reports
    from firmware_reports
    group by device_id
),
last_other as (
    select r.device_id, max(r.reported_at) as last_other_at
    from firmware_reports r
    join latest l on l.device_id = r.device_id and r.version <> l.version
    group by r.device_id
),
since as (
    select r.device_id, min(r.reported_at) as on_version_since
    from firmware_reports r
    join latest l on l.device_id = r.device_id and r.version = l.version
    left join last_other o on o.device_id = r.device_id
    where o.last_other_at is null or r.reported_at > o.last_other_at
    group by r.device_id
),
final as (
    select d.device_id, d.manufacturer, d.model, d.hardware_rev, d.site, d.zone,
           l.version, l.image_hash, l.reported_at, s.on_version_since,
           round(date_diff('second', s.on_version_since, p.as_of) / 86400.0, 2)
               as days_on_version,
           coalesce(l.n_reports, 0) as n_reports
    from devices d
    left join latest l on l.device_id = d.device_id
    left join since s on s.device_id = d.device_id
    cross join firmware_params p
)
select * from final
