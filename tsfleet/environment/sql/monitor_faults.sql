-- Environment-monitor faults: stuck episodes (one per monitor, metric and stuck
-- value), out-of-range episodes and dead monitors (silent for more than
-- $dead_after_hours before $end, or never heard).
-- Reads _env_monitor_readings (environment_monitor_readings, materialized once:
-- one row per monitor, metric and hour). from_at/to_at are UTC hours; n_readings
-- counts the readings of the faulty hours.
-- params: $end (UTC end of the window), $dead_after_hours
-- grain: one row per monitor, metric and fault episode
with stuck as (
    select device_id, zone, metric, 'stuck' as fault,
           min(hour_at) as from_at, max(hour_at) as to_at, sum(n_readings)::bigint as n_readings
    from _env_monitor_readings
    where is_stuck and not is_out_of_range
    group by device_id, zone, metric, value
),

out_of_range as (
    select device_id, zone, metric, 'out_of_range' as fault,
           min(hour_at) as from_at, max(hour_at) as to_at, sum(n_readings)::bigint as n_readings
    from _env_monitor_readings
    where is_out_of_range
    group by device_id, zone, metric
),

last_heard as (
    select d.device_id, d.zone, max(r.last_observed_at) as last_at
    from devices as d
    left join _env_monitor_readings as r using (device_id)
    where d.device_type = 'env_monitor'
    group by all
),

dead as (
    select device_id, zone, null::varchar as metric, 'dead' as fault,
           last_at as from_at, null::timestamp as to_at, 0::bigint as n_readings
    from last_heard
    where last_at is null or last_at < $end::timestamp - to_hours($dead_after_hours::integer)
),

final as (
    select * from stuck
    union all select * from out_of_range
    union all select * from dead
)

select * from final
