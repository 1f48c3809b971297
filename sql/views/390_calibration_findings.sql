-- Open calibration problems for the alert rules, from the result tables of
-- fleet.calibration.detect(): drifting sensors, sensors that need (or will
-- need) recalibration with the date their drift crosses tolerance, sensor
-- faults, and sensors nothing can be compared with.
-- grain: one row per open problem (sensor and finding code)
-- columns: the findings contract: domain, finding, subject_kind, subject_id,
--          site, zone, severity, value (% of scale; fault: see sensor_faults),
--          summary, action, due_at (UTC), observed_at (UTC)
create or replace view calibration_findings as
with drift as (
    select * from sensor_drift
),

needs as (
    select
        'needs_recalibration' as finding,
        device_id, site, zone,
        case when crosses_tolerance_at is null or crosses_tolerance_at <= as_of
            then 'critical' else 'warning' end as severity,
        drift_pct as value,
        format('{} {} has drifted {:.2f}% of scale (tolerance {:.1f}%){}', metric, device_id,
               drift_pct, tolerance_pct,
               case when verdict = 'step' then format(', a step on {}', step_at::date)
                    else format(' at {:+.3f}% per day', drift_rate_pct_per_day) end) as summary,
        'recalibrate' as action,
        coalesce(crosses_tolerance_at, as_of) as due_at,
        as_of as observed_at
    from drift
    where verdict = 'needs_recalibration'
        or (verdict = 'step' and abs(drift_pct) >= tolerance_pct)
),

drifting as (
    select
        'sensor_drifting' as finding,
        device_id, site, zone,
        'warning' as severity,
        drift_pct as value,
        format('{} {} is {} ({:+.2f}% of scale since {}){}', metric, device_id,
               case when verdict = 'step' then 'off by a step' else 'drifting' end,
               drift_pct, segment_start_at::date,
               case when crosses_tolerance_at is not null
                    then format('; crosses {:.1f}% on {}', tolerance_pct,
                                crosses_tolerance_at::date) else '' end) as summary,
        null as action,
        null::timestamp as due_at,
        as_of as observed_at
    from drift
    where verdict = 'drifting' or (verdict = 'step' and abs(drift_pct) < tolerance_pct)
),

faults as (
    select
        'sensor_fault' as finding,
        device_id, site, zone,
        case when fault in ('dead', 'stuck') then 'critical' else 'warning' end as severity,
        value,
        format('{} {} is {}: {}', metric, device_id, replace(fault, '_', ' '), detail) as summary,
        'inspect_device' as action,
        as_of as due_at,
        as_of as observed_at
    from sensor_faults
),

blind as (
    select
        'no_expectation' as finding,
        device_id, site, zone,
        'info' as severity,
        null::double as value,
        format('{} {} has no reference, fewer than 3 peers and no calibration check: '
               || 'its drift cannot be measured', metric, device_id) as summary,
        null as action,
        null::timestamp as due_at,
        as_of as observed_at
    from drift
    where verdict = 'no_expectation'
),

unioned as (
    select * from needs
    union all select * from drifting
    union all select * from faults
    union all select * from blind
),

final as (
    select
        'calibration' as domain,
        finding,
        'device' as subject_kind,
        device_id as subject_id,
        site,
        zone,
        severity,
        value::double as value,
        summary,
        action,
        due_at::timestamp as due_at,
        observed_at::timestamp as observed_at
    from unioned
)

select * from final
