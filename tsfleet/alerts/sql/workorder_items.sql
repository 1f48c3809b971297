-- Open findings that need a person, from every findings view, as work-order items.
-- grain: one row per item (domain, finding, subject, action), the most urgent if repeated
-- Filled in by tsfleet.alerts.workorders: {findings} is a union of the contract columns
-- of every *_findings view. $at is the planning time. A finding without due_at is due
-- 1 day (critical), 7 days (warning) or 30 days (info) after it was observed.
-- item_id: 16 hex digits of md5(domain, finding, subject_kind, subject_id, action).
with findings as (
    {findings}
),

dated as (
    select domain, finding, subject_kind, subject_id,
           coalesce(site, 'unknown') as site, zone,
           case when severity in ('info', 'warning', 'critical') then severity
                else 'warning' end as severity,
           action, value, summary,
           coalesce(due_at, coalesce(observed_at, $at) + to_days(
               case severity when 'critical' then 1 when 'info' then 30 else 7 end))
               as due_at
    from findings
    where action is not null
),

final as (
    select left(md5(concat_ws(chr(31), domain, finding, subject_kind, subject_id, action)), 16)
               as item_id,
           *
    from dated
    qualify row_number() over (
        partition by domain, finding, subject_kind, subject_id, action
        order by due_at, case severity when 'critical' then 0 when 'warning' then 1 else 2 end
    ) = 1
)

select * from final order by site, due_at, item_id
