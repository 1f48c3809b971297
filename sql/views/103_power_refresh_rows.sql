-- internal: reads the session variables power_mark, power_target and power_rollup_until that tsfleet.power.daystats.refresh sets
-- The battery and temperature values the next refresh of the daily power
-- aggregates folds in: the readings of ingest batches after the watermark up to
-- the target (the session variables power_mark, power_target and power_rollup_until, which
-- tsfleet.power.daystats.refresh sets from power_refresh; constants, so the scan
-- skips the row groups of older batches). power_mark < 0 is a rebuild:
-- the whole history: each raw reading still kept, and the hourly rollup
-- (readings_hourly_rollup, the same union as readings_history) for hours whose
-- raw readings aged out, counted with their number of readings at their last
-- observation time.
-- grain: one row per raw reading, or per device, metric and hour of the rollup
-- columns: observed_at (UTC), value (the metric's unit), weight (readings represented)
create or replace view power_refresh_rows as
with mark as (
    select getvariable('power_mark') as batch_id, getvariable('power_target') as target_batch_id,
           getvariable('power_mark') < 0 as is_rebuild
),
raw as not materialized (
    select r.device_id, r.metric, r.observed_at, r.value, 1::bigint as weight
    from readings r
    where r.metric in ('battery_pct', 'battery_voltage_v', 'temperature_c')
      and r.batch_id > getvariable('power_mark')
      and r.batch_id <= getvariable('power_target')
),
raw_hours as (
    -- only hours the rollup may also hold (late data after a retention run): raw readings
    -- up to the rollup's last observation (power_rollup_until, null: no rollup)
    select distinct device_id, metric, date_trunc('hour', observed_at) as hour_at from raw
    where getvariable('power_mark') < 0
      and observed_at <= getvariable('power_rollup_until')
),
rolled as (
    select h.device_id, h.metric, h.last_observed_at as observed_at, h.value_mean as value,
           h.n_readings as weight
    from readings_hourly_rollup h
    anti join raw_hours w
      on w.device_id = h.device_id and w.metric = h.metric and w.hour_at = h.hour_at
    where h.metric in ('battery_pct', 'battery_voltage_v', 'temperature_c')
      and (select is_rebuild from mark)
),
final as (
    select * from raw
    union all
    select * from rolled
)
select * from final
