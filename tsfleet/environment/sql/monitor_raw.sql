-- Raw environment-monitor readings, keyed by small integers for dense arrays:
-- monitor index (environment_monitors.monitor_index), metric index (the position
-- in $metrics, 0-based: temperature_c, humidity_pct, vibration_g, then the declared
-- environmental metrics) and UTC hour (hours since the epoch).
-- Only the columns needed are read; one scan of readings.
-- params: $metrics (list of metric names)
-- grain: one row per environment-monitor reading of one of $metrics
with metrics as (
    select unnest($metrics::varchar[]) as metric,
           (generate_subscripts($metrics::varchar[], 1) - 1)::tinyint as metric_index
),

final as (
    select
        m.monitor_index,
        k.metric_index,
        (epoch(r.observed_at)::bigint // 3600)::integer as hour,
        r.value
    from readings as r
    join metrics as k using (metric)
    join environment_monitors as m using (device_id)
)

select * from final
