-- Valid environment-monitor hours per zone and hour, one column per metric: the
-- mean of the monitors' hourly means, and how many monitors contributed (the
-- most of any metric).
-- Reads _env_monitor_readings (environment_monitor_readings, materialized once:
-- one row per monitor, metric and hour, so count(*) counts monitors).
-- params: $start, $end (UTC hour range [start, end))
-- grain: one row per zone and hour with at least one valid monitor hour
with valid as (
    select zone, hour_at, metric, value
    from _env_monitor_readings
    where is_valid and hour_at >= $start and hour_at < $end
),

final as (
    select
        zone, hour_at,
        avg(value) filter (where metric = 'temperature_c') as temperature_c,
        avg(value) filter (where metric = 'humidity_pct') as humidity_pct,
        avg(value) filter (where metric = 'vibration_g') as vibration_g,
        greatest(count(*) filter (where metric = 'temperature_c'),
                 count(*) filter (where metric = 'humidity_pct'),
                 count(*) filter (where metric = 'vibration_g'))::integer as n_monitors
    from valid
    group by zone, hour_at
)

select * from final
