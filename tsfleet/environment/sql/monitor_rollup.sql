-- Environment-monitor hours whose raw readings retention aged out
-- (readings_hourly_rollup), keyed like monitor_raw.sql. Together the two are the
-- monitors' hourly history (as in readings_history); an hour in both (late data)
-- is merged by count.
-- grain: one row per environment monitor, metric and rolled-up UTC hour
with final as (
    select
        m.monitor_index,
        case u.metric when 'temperature_c' then 0 when 'humidity_pct' then 1 else 2 end::tinyint
            as metric_index,
        (epoch(u.hour_at)::bigint // 3600)::integer as hour,
        u.value_mean * u.n_readings as value_sum, u.value_min, u.value_max,
        u.n_readings::bigint as n_readings
    from readings_hourly_rollup as u
    join environment_monitors as m using (device_id)
    where u.metric in ('temperature_c', 'humidity_pct', 'vibration_g')
)

select * from final
