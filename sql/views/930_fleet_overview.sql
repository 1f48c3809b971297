-- The fleet at a glance, per site.
-- grain: one row per site
-- columns: n_devices, n_offline, n_battery_critical and n_battery_low (by power_state),
--          n_empty_within_30d (forecast), n_firmware_vulnerable, n_firmware_outdated,
--          n_recalibrate (verdict needs_recalibration), n_drifting, n_high_stress
--          (p_fail_30d >= 0.35), n_open_alerts, n_critical_alerts, median_battery_pct (%)
create or replace view fleet_overview as
with final as (
    select
        site,
        count(*) as n_devices,
        count(*) filter (where is_offline) as n_offline,
        count(*) filter (where power_state = 'critical') as n_battery_critical,
        count(*) filter (where power_state = 'low') as n_battery_low,
        count(*) filter (where days_to_empty <= 30) as n_empty_within_30d,
        count(*) filter (where is_vulnerable) as n_firmware_vulnerable,
        count(*) filter (where is_outdated) as n_firmware_outdated,
        count(*) filter (where calibration_verdict = 'needs_recalibration') as n_recalibrate,
        count(*) filter (where calibration_verdict in ('drifting', 'step')) as n_drifting,
        count(*) filter (where p_fail_30d >= 0.35) as n_high_stress,
        sum(n_open_alerts) as n_open_alerts,
        count(*) filter (where worst_alert_severity = 'critical') as n_critical_alerts,
        median(battery_pct) as median_battery_pct
    from device_status
    group by site
)

select * from final
