-- Update success and failure rates by campaign, target version, model and site.
-- grain: one row per dimension and group_value
-- columns: dimension (campaign | target_version | model | site); n_devices, n_finished,
--   n_succeeded, n_failed (failed or rolled back), n_stuck (counts); success_rate,
--   failure_rate (ratio of finished)
create view firmware_campaign_rates as
with devs as (
    select campaign_id, coalesce(target_version, '?') as target_version,
           coalesce(model, '?') as model, coalesce(site, '?') as site, outcome, is_stuck
    from firmware_campaign_devices
),
dims as (
    select 'campaign' as dimension, campaign_id as group_value, outcome, is_stuck from devs
    union all select 'target_version', target_version, outcome, is_stuck from devs
    union all select 'model', model, outcome, is_stuck from devs
    union all select 'site', site, outcome, is_stuck from devs
),
counts as (
    select dimension, group_value, count(*) as n_devices,
           count(*) filter (where outcome in ('succeeded', 'failed', 'rolled_back'))
               as n_finished,
           count(*) filter (where outcome = 'succeeded') as n_succeeded,
           count(*) filter (where outcome in ('failed', 'rolled_back')) as n_failed,
           count(*) filter (where is_stuck) as n_stuck
    from dims
    group by all
),
final as (
    select *, n_succeeded / nullif(n_finished, 0) as success_rate,
           n_failed / nullif(n_finished, 0) as failure_rate
    from counts
)
select * from final
