-- Open power problems for the alert rules: one row per battery device whose
-- state is critical, low or depleting (the most severe one). The action is
-- always replace_battery, due at the predicted critical date (now for a
-- battery already critical).
-- grain: one row per device with an open power problem
-- columns: the findings contract (domain, finding, subject_kind, subject_id, site, zone,
-- severity, value (% level), summary, action, due_at (UTC), observed_at (UTC))
create or replace view power_findings as
with problems as (
    select * from battery_state where power_state in ('critical', 'low', 'depleting')
),
final as (
    select 'power' as domain,
           case power_state when 'critical' then 'battery_critical'
                            when 'low' then 'battery_low'
                            else 'depleting_soon' end as finding,
           'device' as subject_kind,
           device_id as subject_id, site, zone,
           case power_state when 'critical' then 'critical' else 'warning' end as severity,
           level_pct as value,
           case power_state
               when 'critical' then format('Battery of {} at {:.0f}% (critical below {:.0f}%).',
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
)
select * from final
