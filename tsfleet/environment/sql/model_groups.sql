-- Devices of the environment models grouped by zone, device type and age band
-- (whole years of age at the middle of the window); environment monitors excluded.
-- params: $start, $end (UTC window)
-- grain: one row per zone, device type and age band
with devs as (
    select
        device_id, device_type, zone,
        date_diff('second', coalesce(installed_at, $start::timestamp), $start::timestamp)
            / (86400 * 365.25)
        + date_diff('second', $start::timestamp, $end::timestamp) / (2 * 86400 * 365.25)
            as age_years
    from devices
    where device_id not in (select device_id from environment_monitors)
),

final as (
    select zone, device_type, floor(age_years)::integer as age_band, count(*)::bigint as n,
           sum(age_years) as sum_age_years
    from devs
    group by all
)

select * from final
