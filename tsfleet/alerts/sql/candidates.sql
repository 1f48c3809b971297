-- The alerts one rule raises now: rows of its source view matching its condition.
-- grain: one row per matching source row (deduplicated by fingerprint afterwards)
-- Filled in by tsfleet.alerts.evaluate: {source} (quoted identifier), {condition} (the
-- validated rule condition), {annotations} (SQL built from the annotation templates; its
-- literal text comes as ? parameters). The one-row _alert_param holds the rule's name,
-- identity (static labels as text), labels (static labels as JSON) and severity (fixed
-- severity or null), as the first four ? parameters. fingerprint: 16 hex digits of md5(rule, finding,
-- subject_kind, subject_id, static labels), the same in every run and every store.
insert into _alert_candidates
with _alert_param as (
    select ?::varchar as rule, ?::varchar as identity, ?::varchar as labels,
           ?::varchar as severity
),

matched as (
    select * from {source} where ({condition})
),

graded as (
    select m.*,
           coalesce(p.severity, if(m.severity in ('info', 'warning', 'critical'), m.severity,
                                   'warning')) as alert_severity,
           p.rule as alert_rule, p.identity as alert_identity, p.labels as alert_labels
    from matched m
    cross join _alert_param p
),

final as (
    select
        alert_rule as rule,
        left(md5(concat_ws(chr(31), alert_rule, coalesce(finding, ''),
                           coalesce(subject_kind, ''), coalesce(subject_id, ''),
                           alert_identity)), 16) as fingerprint,
        alert_severity as severity,
        domain, finding, subject_kind, subject_id, site, zone,
        value::double as value,
        json_merge_patch(json_object(
            'alertname', alert_rule, 'severity', alert_severity, 'domain', domain,
            'finding', finding, 'subject_kind', subject_kind, 'subject_id', subject_id,
            'site', site, 'zone', zone), alert_labels::json)::varchar as labels,
        {annotations} as annotations,
        action,
        due_at::timestamp as due_at,
        observed_at::timestamp as observed_at
    from graded
)

select * from final
