-- Findings of the alerts domain: devices offline against their own reporting schedule.
-- grain: one row per offline device (finding device_offline)
-- columns: the findings contract (domain, finding, subject_kind, subject_id, site, zone,
-- severity, value = hours silent, summary, action, due_at, observed_at). Severity is
-- warning past k intervals and critical past 4 k intervals and at least a day, which is
-- also when a person should go and look (action inspect_device, due a day later).
create or replace view alerts_findings as
with offline as (
    select *, silent_s > 4 * k * expected_interval_s and silent_s >= 86400 as is_long
    from device_offline
    where is_offline
),

final as (
    select 'alerts' as domain,
           'device_offline' as finding,
           'device' as subject_kind,
           device_id as subject_id,
           site,
           zone,
           case when is_long then 'critical' else 'warning' end as severity,
           round(silent_s / 3600.0, 2) as value,
           case when never_reported
                then format('{} never reported in the {:.1f} h since its installation '
                            '({} intervals of {:.0f} s expected, {})',
                            device_id, silent_s / 3600.0, n_missed_intervals::bigint,
                            expected_interval_s, interval_source)
                else format('{} sent nothing for {:.1f} h ({} intervals of {:.0f} s '
                            'expected, {})', device_id, silent_s / 3600.0,
                            n_missed_intervals::bigint, expected_interval_s, interval_source)
                end as summary,
           case when is_long then 'inspect_device' end as action,
           case when is_long then as_of + interval 1 day end as due_at,
           as_of as observed_at
    from offline
)

select * from final
