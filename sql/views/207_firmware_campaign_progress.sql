-- Update campaigns: progress, success and failure rates, and the halt recommendation.
-- grain: one row per campaign
-- columns: n_devices (targeted); n_pending, n_in_progress, n_succeeded, n_failed,
--   n_rolled_back, n_stuck (counts); n_finished (succeeded + failed + rolled back);
--   complete_pct (% finished); success_rate and failure_rate (ratio of finished;
--   failure = failed or rolled back); started_at, last_event_at (UTC);
--   recommend_halt (failure_rate >= halt_failure_rate with at least halt_min_finished done)
create view firmware_campaign_progress as
with devs as (
    select * from firmware_campaign_devices
),
counts as (
    select campaign_id,
           string_agg(distinct target_version, ', ') as target_versions,
           string_agg(distinct model, ', ') as models,
           count(*) as n_devices,
           count(*) filter (where outcome = 'pending') as n_pending,
           count(*) filter (where outcome = 'in_progress') as n_in_progress,
           count(*) filter (where outcome = 'succeeded') as n_succeeded,
           count(*) filter (where outcome = 'failed') as n_failed,
           count(*) filter (where outcome = 'rolled_back') as n_rolled_back,
           count(*) filter (where is_stuck) as n_stuck,
           min(scheduled_at) as started_at,
           max(state_at) as last_event_at
    from devs
    group by campaign_id
),
final as (
    select c.*,
           c.n_succeeded + c.n_failed + c.n_rolled_back as n_finished,
           round(100.0 * (c.n_succeeded + c.n_failed + c.n_rolled_back) / c.n_devices, 2)
               as complete_pct,
           c.n_succeeded / nullif(c.n_succeeded + c.n_failed + c.n_rolled_back, 0)
               as success_rate,
           (c.n_failed + c.n_rolled_back)
               / nullif(c.n_succeeded + c.n_failed + c.n_rolled_back, 0) as failure_rate,
           coalesce((c.n_failed + c.n_rolled_back)
                        / nullif(c.n_succeeded + c.n_failed + c.n_rolled_back, 0)
                    >= p.halt_failure_rate
                    and c.n_succeeded + c.n_failed + c.n_rolled_back >= p.halt_min_finished,
                    false) as recommend_halt
    from counts c
    cross join firmware_params p
)
select * from final
