-- Raw environment-monitor readings, keyed by small integers for dense arrays:
-- monitor index (environment_monitors.monitor_index), metric index (0 temperature_c,
-- 1 humidity_pct, 2 vibration_g) and UTC hour (hours since the epoch).
-- Only the columns needed are read; one scan of readings.
-- grain: one row per environment-monitor reading of temperature_c, humidity_pct or vibration_g
with final as (
    select
        m.monitor_index,
        case r.metric when 'temperature_c' then 0 when 'humidity_pct' then 1 else 2 end::tinyint
            as metric_index,
        (epoch(r.observed_at)::bigint // 3600)::integer as hour,
        r.value
    from readings as r
    join environment_monitors as m using (device_id)
    where r.metric in ('temperature_c', 'humidity_pct', 'vibration_g')
)

select * from final
