-- Firmware findings for the alert rules: one row per open firmware problem.
-- grain: one row per device and finding (campaign_halt: one row per campaign)
-- columns: the findings contract: domain, finding (vulnerable | unauthorized | incompatible |
--   outdated | unknown | update_stuck | campaign_halt), subject_kind (device; campaign for
--   campaign_halt), subject_id, site, zone, severity (info | warning | critical),
--   value (vulnerable: advisories; unauthorized: open events; outdated: versions behind;
--   update_stuck: hours in state; campaign_halt: failure rate; else 1), summary, action
--   (flash_firmware | inspect_device | null), due_at (UTC, when the action is needed),
--   observed_at (UTC, as of when the finding holds)
create view firmware_findings as
with st as (
    select * from firmware_device_status where version is not null
),
vulnerable as (
    select 'vulnerable' as finding, 'device' as subject_kind, device_id as subject_id, site, zone,
           case when max_severity in ('CRITICAL', 'HIGH') then 'critical'
                when max_severity = 'LOW' then 'info' else 'warning' end as severity,
           n_advisories::double as value,
           format('{} runs {} {} {}, affected by {} ({}){}', device_id, manufacturer, model,
                  version, advisories, max_severity,
                  case when target_version is not null and target_version <> version
                       then '; target is ' || target_version else '' end) as summary,
           'flash_firmware' as action,
           reported_at + case when max_severity in ('CRITICAL', 'HIGH') then interval 7 day
                              else interval 30 day end as due_at,
           reported_at as observed_at
    from st where is_vulnerable
),
unauthorized as (
    select 'unauthorized', 'device', o.device_id, d.site, d.zone, 'critical',
           count(*)::double,
           format('{} changed firmware without authorization: {}', o.device_id,
                  string_agg(o.detail, '; ' order by o.first_reported_at, o.kind)),
           'flash_firmware',
           max(o.last_reported_at) + interval 1 day,
           max(o.last_reported_at)
    from firmware_security_open o
    join devices d on d.device_id = o.device_id
    where o.kind in ('untargeted', 'downgrade', 'hash_mismatch')
    group by o.device_id, d.site, d.zone
),
incompatible as (
    select 'incompatible', 'device', device_id, site, zone, 'critical', 1.0,
           format('{} (hardware rev {}) runs {} {} {}, a release not allowed for that revision',
                  device_id, coalesce(hardware_rev, '?'), manufacturer, model, version),
           'flash_firmware', reported_at + interval 1 day, reported_at
    from st where is_incompatible
),
outdated as (
    select 'outdated', 'device', device_id, site, zone,
           case when is_revoked then 'critical' when release_status = 'deprecated' then 'warning'
                else 'info' end,
           ranks_behind::double,
           format('{} runs {} {} {}{}, behind its target {}', device_id, manufacturer, model,
                  version, case when is_revoked then ' (revoked)'
                                when release_status = 'deprecated' then ' (deprecated)'
                                else '' end, target_version),
           case when is_revoked then 'flash_firmware' end,
           case when is_revoked then reported_at + interval 1 day end,
           reported_at
    from st where is_outdated
),
unknown as (
    select 'unknown', 'device', device_id, site, zone, 'warning', 1.0,
           format('{} runs {} {} {}, a version missing from the catalog{}', device_id,
                  manufacturer, model, version,
                  case when parse_error is not null then ' (' || parse_error || ')' else '' end),
           'inspect_device', reported_at + interval 7 day, reported_at
    from st where is_unknown
    union all
    select 'unknown', 'device', o.device_id, d.site, d.zone, 'warning', 1.0,
           format('{} reports {}', o.device_id, o.detail),
           'inspect_device', o.last_reported_at + interval 7 day, o.last_reported_at
    from firmware_security_open o
    join devices d on d.device_id = o.device_id
    where o.kind = 'unparsable'
),
stuck as (
    select 'update_stuck', 'device', c.device_id, c.site, c.zone, 'warning', c.hours_in_state,
           format('{} has been {} in campaign {} (target {}) for {:.0f} h', c.device_id,
                  c.state, c.campaign_id, coalesce(c.target_version, '?'), c.hours_in_state),
           'flash_firmware', p.as_of + interval 1 day, p.as_of
    from firmware_campaign_devices c
    cross join firmware_params p
    where c.is_stuck
),
halt as (
    select 'campaign_halt', 'campaign', c.campaign_id, null, null, 'critical', c.failure_rate,
           format('halt campaign {} ({} -> {}): {:.0f}% of {} finished updates failed',
                  c.campaign_id, c.models, c.target_versions, 100 * c.failure_rate,
                  c.n_finished),
           null, null, p.as_of
    from firmware_campaign_progress c
    cross join firmware_params p
    where c.recommend_halt
),
unioned as (
    select * from vulnerable
    union all select * from unauthorized
    union all select * from incompatible
    union all select * from outdated
    union all select * from unknown
    union all select * from stuck
    union all select * from halt
),
final as (
    select 'firmware'::varchar as domain, finding::varchar as finding,
           subject_kind::varchar as subject_kind, subject_id::varchar as subject_id,
           site::varchar as site, zone::varchar as zone, severity::varchar as severity,
           value::double as value, summary::varchar as summary, action::varchar as action,
           due_at::timestamp as due_at, observed_at::timestamp as observed_at
    from unioned
)
select * from final
