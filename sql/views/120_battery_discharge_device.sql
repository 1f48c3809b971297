-- Discharge per device over its current segment (since the last reset): the
-- least-squares slope of the daily levels, over the whole segment and over its
-- last 14 days, with the latest level.
-- grain: one row per device with battery readings
-- columns: segment_start_day (date), n_days, rate_pct_per_day and rate_14d_pct_per_day
-- (% per day, positive = discharging), level_pct (% latest daily mean), last_observed_at (UTC),
-- temperature_c (degrees C, zone mean over the segment), firmware_version (latest)
create or replace view battery_discharge_device as
with days as (
    select b.*,
           sum(b.is_reset_day::int) over (partition by b.device_id order by b.day) as segment_no,
           epoch(b.mean_observed_at) / 86400.0 as t_days
    from battery_daily b
),
current_segment as (
    select d.* from days d
    qualify d.segment_no = max(d.segment_no) over (partition by d.device_id)
        and not (d.is_reset_day and d.segment_no > 0)
),
per_device as (
    select device_id,
           min(day) as segment_start_day,
           count(*) as n_days,
           -regr_slope(level_pct, t_days) as rate_pct_per_day,
           -regr_slope(level_pct, t_days) filter (where day > (select max(day) from battery_daily)
                                                         - interval 14 day) as rate_14d_pct_per_day,
           arg_max(level_pct, day) as level_pct,
           max(last_observed_at) as last_observed_at
    from current_segment
    group by device_id
),
temperature as (
    select c.device_id, avg(z.temperature_c) as temperature_c
    from current_segment c
    join devices d using (device_id)
    join zone_temperature_daily z on z.zone = d.zone and z.day = c.day
    group by c.device_id
),
firmware as (
    select device_id, arg_max(version, reported_at) as firmware_version
    from firmware_reports group by device_id
),
final as (
    select p.device_id, d.device_type, d.model, d.site, d.zone, d.battery_chemistry,
           d.reporting_interval_s, p.segment_start_day, p.n_days, p.rate_pct_per_day,
           p.rate_14d_pct_per_day, p.level_pct, p.last_observed_at, t.temperature_c,
           f.firmware_version
    from per_device p
    join devices d using (device_id)
    left join temperature t using (device_id)
    left join firmware f using (device_id)
)
select * from final
