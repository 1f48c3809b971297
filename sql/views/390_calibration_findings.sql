-- Open calibration problems for the alert rules, from the result tables of
-- fleet.calibration.detect(): drifting sensors (level 'watch': the drift
-- reached the watch level, default 1% of scale), sensors that need (or will
-- need) recalibration (level 'recalibrate': the tolerance, default 2%) with
-- the date their drift crosses tolerance, sensor faults, zones whose drift
-- cannot be told from a shared change, and sensors nothing can be compared
-- with (with the true reason); and, from the devices themselves without waiting
-- for detect(), sensors whose measures names no metric of metric_catalog
-- (unknown_metric: a typo, with the metric within 2 edits or a quarter of its
-- length; an alias, with its canonical metric; or a metric not declared yet, with
-- its readings waiting in quarantine), which then have no no_expectation row.
-- grain: one row per open problem (sensor and finding code)
-- columns: the findings contract: domain, finding, subject_kind, subject_id,
--          site, zone, severity, value (% of scale; fault: see sensor_faults),
--          summary, action, due_at (UTC), observed_at (UTC); then level
--          ('watch' | 'recalibrate' | null)
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
        as_of as observed_at,
        level
    from drift
    where level = 'recalibrate'
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
        as_of as observed_at,
        level
    from drift
    where level = 'watch'
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
        as_of as observed_at,
        null as level
    from sensor_faults
),

nearest as (
    select device_id, metric, distance
    from (
        select
            s.device_id,
            c.metric,
            levenshtein(s.metric, c.metric) as distance,
            greatest(2, length(s.metric) // 4) as allowed,
            row_number() over (partition by s.device_id
                               order by levenshtein(s.metric, c.metric), c.metric) as k
        from calibration_sensors s, metric_catalog c
        where not s.is_metric_declared
    )
    where k = 1 and distance <= allowed
),

unknown as (
    select
        'unknown_metric' as finding,
        s.device_id, s.site, s.zone,
        'warning' as severity,
        null::double as value,
        format('{} measures {}, which is not in metric_catalog{}: its calibration cannot be '
               'judged; {}', s.device_id, s.metric,
               case when a.metric is not null
                    then format(' (an alias of {}: its readings are stored as {})',
                                a.metric, a.metric)
                    when n.metric is not null then format(' (did you mean {}?)', n.metric)
                    else '' end,
               case when a.metric is not null then format('set measures to {}', a.metric)
                    when q.n_readings is not null
                    then format('{} of its readings of {} wait in quarantine (unknown_metric): '
                                'declare the metric (ingest kind metrics or fleet.metrics.add) '
                                'to re-ingest them', q.n_readings, s.metric)
                    else 'correct measures, or declare the metric (ingest kind metrics or '
                         'fleet.metrics.add)' end) as summary,
        case when a.metric is null and (q.n_readings is not null or n.metric is null)
             then 'declare_metric' else 'correct_measures' end as action,
        null::timestamp as due_at,
        l.last_observed_at as observed_at,
        null as level
    from calibration_sensors s
    left join metric_aliases a on a.alias = s.metric
    left join nearest n on n.device_id = s.device_id
    left join calibration_quarantined q
        on q.device_id = s.device_id and q.reason = 'unknown_metric'
    left join device_last_seen l on l.device_id = s.device_id
    where not s.is_metric_declared
),

blind as (
    select
        'no_expectation' as finding,
        device_id, site, zone,
        'info' as severity,
        null::double as value,
        format('{} {}: its drift cannot be measured: {}', metric, device_id, reason) as summary,
        null as action,
        null::timestamp as due_at,
        as_of as observed_at,
        null as level
    from drift
    where verdict = 'no_expectation'
      and device_id not in (select device_id from unknown)
),

ambiguous as (
    select
        'zone_ambiguous' as finding,
        device_id, site, zone,
        'info' as severity,
        drift_pct as value,
        format('{} {} {}', metric, device_id, reason) as summary,
        null as action,
        null::timestamp as due_at,
        as_of as observed_at,
        null as level
    from drift
    where verdict = 'zone_ambiguous'
),

unioned as (
    select * from needs
    union all select * from drifting
    union all select * from faults
    union all select * from blind
    union all select * from ambiguous
    union all select * from unknown
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
        observed_at::timestamp as observed_at,
        level::varchar as level
    from unioned
)

select * from final
