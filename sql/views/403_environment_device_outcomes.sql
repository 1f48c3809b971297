-- Per-device failure and performance outcomes that the environment may
-- influence: failures and reboots (device_events) per device-year, battery
-- discharge rate, packet loss, mean RSSI and calibration drift rate. Battery and
-- RSSI come from raw readings where kept and the hourly rollup where retention
-- aged them out (as in readings_history), so the view works over the whole history.
-- grain: one row per device (environment monitors excluded)
-- columns: device_id, observed_days (span of the device's readings, days),
--   failures_per_year, reboots_per_year (events per device-year),
--   battery_discharge_pct_per_day (fall of battery_pct per day; NULL without it),
--   packet_loss_pct (readings missing against the nominal interval, percent, from rssi_dbm),
--   mean_rssi_dbm (dBm), calibration_drift_pct_per_day (|drift| per day as % of the
--   reference value, from two or more calibrations; NULL where not available)
create or replace view environment_device_outcomes as
with devs as (
    select device_id, reporting_interval_s
    from devices
    where device_id not in (select device_id from environment_monitors)
),

spans as (
    select device_id, min(first_observed_at) as first_at, max(observed_at) as last_at
    from device_latest
    group by device_id
),

events as (
    select
        device_id,
        count(*) filter (where event = 'failure') as n_failures,
        count(*) filter (where event = 'reboot') as n_reboots
    from device_events
    group by device_id
),

-- battery and RSSI points over the whole history: raw readings where kept, the
-- hourly rollup (its mean, at the middle of the hour) where retention aged them
-- out; the two cover different hours. An hour's mean counts as one point (devices
-- report about hourly, so this matches the raw mean closely and keeps the scan of
-- readings one plain aggregate)
points as (
    select device_id, metric, epoch(observed_at) as t_s, value
    from readings
    where metric in ('battery_pct', 'rssi_dbm')
    union all
    select device_id, metric, epoch(hour_at) + 1800, value_mean
    from readings_hourly_rollup
    where metric in ('battery_pct', 'rssi_dbm')
),

series as (
    select
        device_id,
        -86400 * regr_slope(value, t_s) filter (where metric = 'battery_pct')
            as battery_discharge_pct_per_day,
        avg(value) filter (where metric = 'rssi_dbm') as mean_rssi_dbm
    from points
    group by device_id
),

delivery as (
    select
        l.device_id,
        100 * greatest(0, 1 - l.n_readings / (floor(epoch(l.observed_at - l.first_observed_at)
                                              / d.reporting_interval_s) + 1)) as packet_loss_pct
    from device_latest as l
    join devs as d using (device_id)
    where l.metric = 'rssi_dbm' and d.reporting_interval_s > 0
),

drift as (
    select
        device_id,
        100 * abs(86400 * regr_slope(measured_value - reference_value, epoch(calibrated_at)))
            / nullif(abs(avg(reference_value)), 0) as calibration_drift_pct_per_day
    from calibrations
    where measured_value is not null and reference_value is not null
    group by device_id
    having count(*) >= 2
),

final as (
    select
        d.device_id,
        epoch(s.last_at - s.first_at) / 86400 as observed_days,
        365.25 * coalesce(e.n_failures, 0)
            / nullif(epoch(s.last_at - s.first_at) / 86400, 0) as failures_per_year,
        365.25 * coalesce(e.n_reboots, 0)
            / nullif(epoch(s.last_at - s.first_at) / 86400, 0) as reboots_per_year,
        r.battery_discharge_pct_per_day,
        p.packet_loss_pct,
        r.mean_rssi_dbm,
        c.calibration_drift_pct_per_day
    from devs as d
    left join spans as s using (device_id)
    left join events as e using (device_id)
    left join series as r using (device_id)
    left join delivery as p using (device_id)
    left join drift as c using (device_id)
)

select * from final
