-- Everything known about each device, flattened for dashboards: identity, last
-- seen, battery, firmware, calibration, environment, network and open alerts.
-- Reads latest-state and result tables only, never raw readings.
-- grain: one row per registered device
-- columns: last_observed_at (UTC), silent_s (seconds), is_offline; battery_pct (latest
--          report, %), power_state, days_to_empty (days), empty_at (UTC, forecast);
--          firmware_version, is_outdated, is_vulnerable, max_severity; calibration_verdict,
--          drift_pct (% of reading); stress_index, p_fail_30d (probability); gateway_id,
--          rssi_dbm (latest, dBm); n_open_alerts, worst_alert_severity, n_work_items
create or replace view device_status as
with latest as (
    select
        device_id,
        max(observed_at) as last_observed_at,
        max(value) filter (where metric = 'battery_pct') as battery_pct,
        max(value) filter (where metric = 'battery_voltage_v') as battery_voltage_v,
        max(value) filter (where metric = 'rssi_dbm') as rssi_dbm
    from device_latest
    group by device_id
),

forecast as (
    select device_id, days_to_empty, empty_at, method as forecast_method
    from battery_forecast
    qualify row_number() over (partition by device_id order by computed_at desc) = 1
),

drift as (
    select device_id, verdict as calibration_verdict, drift_pct
    from sensor_drift
    qualify row_number() over (partition by device_id order by abs(drift_pct) desc nulls last) = 1
),

open_alerts as (
    select
        subject_id as device_id,
        count(*) as n_open_alerts,
        max(case severity when 'critical' then 3 when 'warning' then 2 else 1 end) as worst
    from alerts
    where subject_kind = 'device' and state in ('pending', 'firing', 'acknowledged')
    group by subject_id
),

work_items as (
    select subject_id as device_id, count(*) as n_work_items
    from work_order_items
    where subject_kind = 'device'
    group by subject_id
),

final as (
    select
        d.device_id,
        d.device_type,
        d.manufacturer,
        d.model,
        d.site,
        d.zone,
        d.criticality,
        l.last_observed_at,
        o.silent_s,
        coalesce(o.is_offline, false) as is_offline,
        l.battery_pct,
        l.battery_voltage_v,
        b.power_state,
        f.days_to_empty,
        f.empty_at,
        f.forecast_method,
        fw.version as firmware_version,
        fw.is_outdated,
        fw.is_vulnerable,
        fw.max_severity,
        c.calibration_verdict,
        c.drift_pct,
        e.stress_index,
        e.p_fail_30d,
        n.gateway_id,
        l.rssi_dbm,
        coalesce(a.n_open_alerts, 0) as n_open_alerts,
        case a.worst when 3 then 'critical' when 2 then 'warning' when 1 then 'info' end
            as worst_alert_severity,
        coalesce(w.n_work_items, 0) as n_work_items
    from devices as d
    left join latest as l on l.device_id = d.device_id
    left join device_offline as o on o.device_id = d.device_id
    left join battery_state as b on b.device_id = d.device_id
    left join forecast as f on f.device_id = d.device_id
    left join firmware_device_status as fw on fw.device_id = d.device_id
    left join drift as c on c.device_id = d.device_id
    left join environment_device_exposure as e on e.device_id = d.device_id
    left join network_attachment as n on n.device_id = d.device_id
    left join open_alerts as a on a.device_id = d.device_id
    left join work_items as w on w.device_id = d.device_id
)

select * from final
