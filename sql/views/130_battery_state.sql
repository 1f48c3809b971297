-- Power state of each battery device: ok, low, critical or depleting (predicted
-- to reach its critical level within depleting_days), from the latest
-- normalized level and the latest forecast, with thresholds per device type
-- (battery_thresholds; the row '*' is the default). unknown: no battery data.
-- grain: one row per battery-powered device (battery_chemistry other than mains, or
-- any device with battery_pct or battery_voltage_v readings)
-- columns: level_pct (%), observed_at (UTC of the latest reading), low_pct / critical_pct (%),
-- depleting_days (days), critical_at / empty_at (UTC predicted), days_to_critical (days; 0 when
-- the level is at or below critical, never negative), power_state
create or replace view battery_state as
with battery_devices as (
    select * from devices
    where (battery_chemistry is not null and battery_chemistry <> 'mains')
       or device_id in (select device_id from device_latest
                        where metric in ('battery_pct', 'battery_voltage_v'))
),
latest as (
    select device_id, arg_max(level_pct, observed_at) as level_pct, max(observed_at) as observed_at
    from battery_readings group by device_id
),
thresholds as (
    select d.device_id,
           coalesce(t.low_pct, x.low_pct) as low_pct,
           coalesce(t.critical_pct, x.critical_pct) as critical_pct,
           coalesce(t.depleting_days, x.depleting_days) as depleting_days
    from battery_devices d
    left join battery_thresholds t on t.device_type = d.device_type
    cross join (select * from battery_thresholds where device_type = '*') x
),
final as (
    select d.device_id, d.device_type, d.site, d.zone, d.criticality,
           l.level_pct, l.observed_at, t.low_pct, t.critical_pct, t.depleting_days,
           f.critical_at, f.empty_at, f.method, f.pattern,
           case when l.level_pct <= t.critical_pct then 0.0  -- critical now
                else greatest(epoch(f.critical_at - l.observed_at) / 86400.0, 0.0)
           end as days_to_critical,
           case when l.level_pct is null then 'unknown'
                when l.level_pct <= t.critical_pct then 'critical'
                when l.level_pct <= t.low_pct then 'low'
                when f.critical_at is not null
                     and f.critical_at <= l.observed_at + to_days(t.depleting_days::int)
                     then 'depleting'
                else 'ok'
           end as power_state
    from battery_devices d
    join thresholds t using (device_id)
    left join latest l using (device_id)
    left join battery_forecast f using (device_id)
)
select * from final
