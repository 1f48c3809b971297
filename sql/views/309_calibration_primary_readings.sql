-- The readings detect() builds its hourly grid from: every raw reading of a
-- metric that sensors measure, and the hourly rollup rows of hours whose raw
-- readings retention deleted (the union of readings_history; where an hour
-- has raw readings, its rollup row is left out, as there). Left unaggregated
-- and not joined to the sensors: detect() keeps the (device, metric) pairs of
-- calibration_sensors and buckets by hour in one numpy pass, because a
-- string-keyed join and hash aggregate over 20 million sensor-hours would
-- take longer than the whole analysis may.
-- grain: one row per raw reading of a measured metric, or per rolled-up device-hour
-- columns: observed_at (UTC; the hour start for rollup rows), value (metric unit;
--          the hour's mean for rollup rows), n_readings (1 for raw rows), is_rollup
create or replace view calibration_primary_readings as
with measured as (
    select distinct metric from calibration_sensors
),

raw as (
    select device_id, metric, observed_at, value, 1::bigint as n_readings,
        false as is_rollup
    from readings
    where metric in (select metric from measured)
),

late_raw_hours as (
    -- raw readings inside the rolled-up period (normally none)
    select distinct r.device_id, r.metric, date_trunc('hour', r.observed_at) as hour_at
    from readings r
    where r.observed_at < (select max(cutoff_at) from retention_runs)
),

rolled as (
    select u.device_id, u.metric, u.hour_at as observed_at, u.value_mean as value,
        u.n_readings, true as is_rollup
    from readings_hourly_rollup u
    anti join late_raw_hours w
        on w.device_id = u.device_id and w.metric = u.metric and w.hour_at = u.hour_at
    where u.metric in (select metric from measured)
),

final as (
    select * from raw
    union all
    select * from rolled
)

select * from final
