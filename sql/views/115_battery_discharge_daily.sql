-- Daily discharge rate per device: the level drop between consecutive daily
-- means divided by the time between them, within one discharge segment (days
-- with a reset and the days next to one are left out, so a charge or a new
-- battery never counts as negative discharge), with the zone's temperature and
-- the firmware version the device reported last by that day.
-- grain: one row per battery device and UTC day (after its first day in a segment)
-- columns: rate_pct_per_day (% per day, positive = discharging), level_pct (%),
-- temperature_c (degrees C, null where the zone has no temperature sensor), firmware_version
create or replace view battery_discharge_daily as
with days as (
    select b.*,
           lag(b.level_pct) over w as prev_level_pct,
           lag(b.mean_observed_at) over w as prev_observed_at,
           lead(b.is_reset_day) over w as next_is_reset,
           lag(b.is_reset_day) over w as prev_is_reset,
           sum(b.is_reset_day::int) over w as segment_no
    from battery_daily b
    window w as (partition by b.device_id order by b.day)
),
rates as (
    select device_id, day, segment_no, level_pct, mean_observed_at,
           (prev_level_pct - level_pct)
           / (epoch(mean_observed_at - prev_observed_at) / 86400.0) as rate_pct_per_day
    from days
    where prev_level_pct is not null and not is_reset_day
      and not coalesce(next_is_reset, false) and not coalesce(prev_is_reset, false)
),
firmware as (
    select device_id, reported_at, version from firmware_reports
),
final as (
    select r.device_id, d.device_type, d.model, d.site, d.zone, r.day, r.segment_no,
           r.level_pct, r.rate_pct_per_day, z.temperature_c, f.version as firmware_version
    from rates r
    join devices d using (device_id)
    left join zone_temperature_daily z on z.zone = d.zone and z.day = r.day
    asof left join firmware f on f.device_id = r.device_id and f.reported_at <= r.mean_observed_at
)
select * from final
