-- Environment-monitor hours whose raw readings retention aged out
-- (readings_hourly_rollup), keyed like monitor_raw.sql. Together the two are the
-- monitors' hourly history (as in readings_history); an hour in both (late data)
-- is merged by count.
-- params: $metrics (list of metric names)
-- grain: one row per environment monitor, metric and rolled-up UTC hour
with metrics as (
    select unnest($metrics::varchar[]) as metric,
           (generate_subscripts($metrics::varchar[], 1) - 1)::tinyint as metric_index
),

final as (
    select
        m.monitor_index,
        k.metric_index,
        (epoch(u.hour_at)::bigint // 3600)::integer as hour,
        u.value_mean * u.n_readings as value_sum, u.value_min, u.value_max,
        u.n_readings::bigint as n_readings
    from readings_hourly_rollup as u
    join metrics as k using (metric)
    join environment_monitors as m using (device_id)
)

select * from final
