-- Failures and reboots of the analysed devices inside the window, with the
-- device's zone, type and age band (as model_groups.sql) and the UTC hour.
-- params: $start, $end (UTC window)
-- grain: one row per failure or reboot event
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
    select d.zone, d.device_type, floor(d.age_years)::integer as age_band,
           date_trunc('hour', e.event_at) as hour_at, e.event
    from device_events as e
    join devs as d using (device_id)
    where e.event in ('failure', 'reboot') and e.event_at >= $start and e.event_at < $end
)

select * from final
