-- The readings detect() builds its hourly grid from: every raw reading of a
-- sensor's primary metric, and the hourly rollup rows of hours whose raw
-- readings retention deleted. The same union as readings_history, left
-- unaggregated so that detect() buckets it by hour in one numpy pass (a
-- DuckDB hash aggregate over 20 million sensor-hours keyed by strings takes
-- longer than the whole analysis may). Where an hour has raw readings, its
-- rollup row (late data) is left out, as in readings_history.
-- grain: one row per raw primary reading, or per rolled-up sensor-hour
-- columns: observed_at (UTC; the hour start for rollup rows), value (metric unit;
--          the hour's mean for rollup rows), n_readings (1 for raw rows), is_rollup
create or replace view calibration_primary_readings as
with sensors as (
    select device_id, metric from calibration_sensors
),

raw as (
    select r.device_id, r.observed_at, r.value, 1::bigint as n_readings, false as is_rollup
    from readings r
    semi join sensors s on s.device_id = r.device_id and s.metric = r.metric
),

late_raw_hours as (
    -- raw readings inside the rolled-up period (normally none)
    select distinct r.device_id, r.metric, date_trunc('hour', r.observed_at) as hour_at
    from readings r
    where r.observed_at < (select max(cutoff_at) from retention_runs)
),

rolled as (
    select u.device_id, u.hour_at as observed_at, u.value_mean as value, u.n_readings,
        true as is_rollup
    from readings_hourly_rollup u
    semi join sensors s on s.device_id = u.device_id and s.metric = u.metric
    anti join late_raw_hours w
        on w.device_id = u.device_id and w.metric = u.metric and w.hour_at = u.hour_at
),

final as (
    select * from raw
    union all
    select * from rolled
)

select * from final
