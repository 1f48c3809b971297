-- Failures per device inside the hours that have a complete zone environment.
-- params: $start, $end (UTC window)
-- grain: one row per device with at least one such failure
with complete_hours as (
    select zone, hour_at
    from environment_zone_hourly
    where temperature_c is not null and humidity_pct is not null
      and vibration_g is not null and daily_swing_c is not null
),

final as (
    select e.device_id, count(*) as n_failures
    from device_events as e
    join devices as d using (device_id)
    join complete_hours as z on z.zone = d.zone and z.hour_at = date_trunc('hour', e.event_at)
    where e.event = 'failure' and d.device_id not in (select device_id from environment_monitors)
      and e.event_at >= $start and e.event_at < $end
    group by e.device_id
)

select * from final
