-- Open power problems for the alert rules: one row per battery device whose
-- state is critical, low or depleting (the most severe one), with the action
-- replace_battery due at the predicted critical date (now for a battery already
-- critical); and one row per voltage-only device whose cell curve has no points
-- (no_battery_curve: its level cannot be read until the curve is ingested with
-- the battery_curves kind) or battery device whose chemistry is not in
-- battery_chemistries (unknown_chemistry: no knee, one cell unless battery_cells says).
-- grain: one row per device and open power finding
-- columns: the findings contract (domain, finding, subject_kind, subject_id, site, zone,
-- severity, value (% level; null for the curve findings), summary, action, due_at (UTC),
-- observed_at (UTC))
create or replace view power_findings as
with problems as (
    select * from battery_state where power_state in ('critical', 'low', 'depleting')
),
state_findings as (
    select 'power' as domain,
           case power_state when 'critical' then 'battery_critical'
                            when 'low' then 'battery_low'
                            else 'depleting_soon' end as finding,
           'device' as subject_kind,
           device_id as subject_id, site, zone,
           case power_state when 'critical' then 'critical' else 'warning' end as severity,
           level_pct as value,
           case power_state
               when 'critical' then format('Battery of {} at {:.1f}% (critical at {:.0f}% or below).',
                                           device_id, level_pct, critical_pct)
               when 'low' then format('Battery of {} low at {:.0f}%{}.', device_id, level_pct,
                                      coalesce(format(', critical by {}', strftime(critical_at, '%Y-%m-%d')), ''))
               else format('Battery of {} at {:.0f}% will reach {:.0f}% by {} ({:.0f} days).',
                           device_id, level_pct, critical_pct,
                           strftime(critical_at, '%Y-%m-%d'), days_to_critical)
           end as summary,
           'replace_battery' as action,
           case when power_state = 'critical' then observed_at
                else coalesce(least(critical_at, observed_at + to_days(depleting_days::int)),
                              observed_at + to_days(depleting_days::int)) end as due_at,
           observed_at
    from problems
),
battery_devices as (
    select d.device_id, d.site, d.zone, d.battery_chemistry,
           coalesce(d.battery_curve, d.battery_chemistry) as curve_id,
           c.chemistry is not null as is_known_chemistry,
           p.device_id is null and v.device_id is not null as is_voltage_only,
           greatest(p.observed_at, v.observed_at) as observed_at
    from devices d
    left join battery_chemistries c on c.chemistry = d.battery_chemistry
    left join (select * from device_latest where metric = 'battery_pct') p using (device_id)
    left join (select * from device_latest where metric = 'battery_voltage_v') v using (device_id)
    where (d.battery_chemistry is not null and d.battery_chemistry <> 'mains')
       or p.device_id is not null or v.device_id is not null
),
flagged as (
    select *,
           is_voltage_only and (curve_id is null
                                or curve_id not in (select curve_id from battery_curves))
               as is_missing_curve
    from battery_devices
),
curve_findings as (
    select 'power' as domain,
           case when is_missing_curve then 'no_battery_curve' else 'unknown_chemistry' end
               as finding,
           'device' as subject_kind, device_id as subject_id, site, zone,
           case when is_missing_curve then 'warning' else 'info' end as severity,
           null::double as value,
           case when is_missing_curve and curve_id is null
                then format('Battery of {} reports only a voltage and has no battery_chemistry: '
                            'set battery_chemistry (or battery_curve) and battery_cells on the '
                            'device.', device_id)
                when is_missing_curve
                then format('No cell curve ''{}'' for {}: its voltage cannot be read as a '
                            'level; ingest the curve (kind battery_curves: curve_id, level_pct, '
                            'voltage_v, cells) or set battery_curve to a known curve.',
                            curve_id, device_id)
                else format('Chemistry ''{}'' of {} is not in battery_chemistries: no knee, {}; '
                            'add its curve (kind battery_curves, curve_id ''{}'') and a '
                            'battery_chemistries row for its knee and default cells.',
                            battery_chemistry, device_id,
                            case when is_voltage_only
                                 then format('read through curve ''{}''', curve_id)
                                 else 'its percent gauge used as reported' end,
                            battery_chemistry)
           end as summary,
           'add_battery_curve' as action,
           observed_at as due_at,
           observed_at
    from flagged
    where is_missing_curve or (battery_chemistry is not null and not is_known_chemistry)
),
final as (
    select * from state_findings
    union all
    select * from curve_findings
)
select * from final
