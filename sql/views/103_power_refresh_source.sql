-- Battery and temperature values of the keys in power_refresh_keys (of every
-- device and day when there is no watermark yet: a rebuild), over the whole history: each raw reading where it is still kept, and the hourly rollup
-- (readings_hourly_rollup, the same union as readings_history) for hours whose raw
-- readings aged out. A rollup hour counts with its number of readings, at its
-- last observation time.
-- grain: one row per raw reading, or per device, metric and hour of the rollup
-- columns: observed_at (UTC), value (the metric's unit), weight (readings represented)
create or replace view power_refresh_source as
with keys as (
    select * from power_refresh_keys
),
is_full as (
    select count(batch_id) = 0 as is_rebuild from power_refresh
),
raw as (
    select r.device_id, r.metric, r.observed_at, r.value, 1::bigint as weight
    from readings r
    where r.metric in ('battery_pct', 'battery_voltage_v', 'temperature_c')
      and (select is_rebuild from is_full)
    union all
    select r.device_id, r.metric, r.observed_at, r.value, 1::bigint as weight
    from readings r
    semi join keys k on k.device_id = r.device_id and k.day = r.observed_at::date
    where r.metric in ('battery_pct', 'battery_voltage_v', 'temperature_c')
      and not (select is_rebuild from is_full)
),
raw_hours as (
    -- only hours the rollup may also hold (late data after a retention run)
    select distinct device_id, metric, date_trunc('hour', observed_at) as hour_at from raw
    where observed_at <= (select max(last_observed_at) from readings_hourly_rollup)
),
rolled_keys as (
    select h.* from readings_hourly_rollup h
    where (select is_rebuild from is_full)
    union all
    select h.* from readings_hourly_rollup h
    semi join keys k on k.device_id = h.device_id and k.day = h.hour_at::date
    where not (select is_rebuild from is_full)
),
rolled as (
    select h.device_id, h.metric, h.last_observed_at as observed_at, h.value_mean as value,
           h.n_readings as weight
    from rolled_keys h
    anti join raw_hours w
      on w.device_id = h.device_id and w.metric = h.metric and w.hour_at = h.hour_at
    where h.metric in ('battery_pct', 'battery_voltage_v', 'temperature_c')
),
final as (
    select * from raw
    union all
    select * from rolled
)
select * from final
