-- Open environment problems for the alert rules: devices likely to fail
-- within 30 days (environment_stress, inspect_device), problem zones from the
-- recommendations, faulty environment monitors (inspect_device), zones
-- without any environment data, and one critical (error-level) finding when an
-- analysis ran on a store without any environment monitor declared
-- (environment_no_monitors; the per-zone environment_no_data rows are then left out).
-- grain: one row per open finding (device, zone or monitor)
-- columns: the findings contract: domain, finding, subject_kind, subject_id, site, zone,
--   severity, value (the key number), summary, action, due_at, observed_at (UTC)
create or replace view environment_findings as
with stressed as (
    select
        'environment' as domain,
        'environment_stress' as finding,
        'device' as subject_kind,
        device_id as subject_id,
        site, zone,
        case when p_fail_30d >= 0.5 then 'critical' else 'warning' end as severity,
        p_fail_30d as value,
        case when env_source = 'none'
             then format('{} in {}: {:.0f}% chance of failure within 30 days (no environment '
                         || 'data: typical environment of its type assumed)', device_id, zone,
                         100 * p_fail_30d)
             else format('{} in {}: {:.0f}% chance of failure within 30 days (stress index '
                         || '{:.0f}/100, {:.0f}% of hours outside its envelope)', device_id,
                         zone, 100 * p_fail_30d, coalesce(stress_index, 0),
                         100 * coalesce(share_hours_outside_envelope, 0))
        end as summary,
        'inspect_device' as action,
        -- dated on the data's clock (the last hour analysed), not the wall clock
        coalesce((select max(hour_at) from environment_zone_hourly), computed_at)
            + interval 14 day as due_at,
        coalesce((select max(hour_at) from environment_zone_hourly), computed_at) as observed_at
    from environment_device_exposure
    where p_fail_30d >= p_fail_threshold
),

zones as (
    select
        'environment', 'environment_problem_zone', 'zone', zone, site, zone,
        case when rate_ratio >= 2 and ci_low > 1 then 'critical' else 'warning' end,
        avoidable_failures_per_year, sentence, null, null::timestamp, computed_at
    from environment_recommendations
),

faults as (
    select
        'environment', 'environment_monitor_' || f.fault, 'device', f.device_id, d.site, f.zone,
        'warning', f.n_readings::double,
        format('environment monitor {} in {} is {}{}; its readings are excluded', f.device_id,
               f.zone, replace(f.fault, '_', ' '),
               case when f.metric is null then '' else ' (' || f.metric || ')' end),
        'inspect_device',
        coalesce(f.to_at, (select max(hour_at) from environment_zone_hourly), f.computed_at)
            + interval 3 day,
        coalesce(f.to_at, (select max(hour_at) from environment_zone_hourly), f.computed_at)
    from environment_monitor_faults as f
    join devices as d using (device_id)
    where f.fault = 'dead' or f.to_at >= f.computed_at - interval 1 day
       or f.to_at >= (select max(hour_at) from environment_zone_hourly) - interval 1 day
),

blind as (
    select
        'environment', 'environment_no_data', 'zone', zone, any_value(site), zone, 'info',
        count(*)::double,
        format('zone {}: no environment data for its {} devices', zone, count(*)),
        null, null::timestamp, any_value(computed_at)
    from environment_device_exposure
    where env_source = 'none' and exists (select 1 from environment_monitors)
    group by zone
),

no_monitors as (
    select
        'environment', 'environment_no_monitors', 'fleet', 'fleet', null, null, 'critical',
        count(*)::double,
        format('no environment monitors: none of the {} devices is declared one (set '
               || 'is_environment_monitor on the device, or add its device_type to '
               || 'environment_monitor_types); the environment analysis had no data', count(*)),
        'declare_environment_monitors', null::timestamp, any_value(computed_at)
    from environment_device_exposure
    where not exists (select 1 from environment_monitors)
    having count(*) > 0
),

final as (
    select * from stressed
    union all select * from zones
    union all select * from faults
    union all select * from blind
    union all select * from no_monitors
)

select * from final
