-- Post-update health: does a release hurt devices even when every install "succeeded"?
-- Pools the per-device rows of firmware_update_device_health (devices that succeeded an
-- update, the health_window_days after it against as many days before) per release.
-- grain: one row per manufacturer, model and installed version
-- columns: n_updated (devices), n_with_battery (devices with battery_pct on both sides);
--   drain_before_pct_per_day, drain_after_pct_per_day (median battery drain, %/day);
--   drain_ratio (median of each device's after/before drain); failure_share_before/after
--   (share of devices with a failure event); silent_share_before/after (share of devices
--   with a whole day without any reading); failure_p, silent_p, drain_p (one-sided exact
--   sign tests over the devices that changed: more began failing, going silent, or
--   draining faster after the update than stopped); verdict (healthy | unhealthy |
--   insufficient_data) and the reasons for it. A criterion counts only where its p is
--   below 0.05: one device of 18 failing after an update is no evidence against a release.
create view firmware_update_health as
with p as (
    select * from firmware_params
),
per_device as (
    -- the per-device step (view firmware_update_device_health, or its rows collected
    -- from a distributed run's buckets)
    select manufacturer, model, target_version, device_id,
           drain_before_pct_per_day as drain_before, drain_after_pct_per_day as drain_after,
           is_silent_before as silent_before, is_silent_after as silent_after,
           is_failed_before as failed_before, is_failed_after as failed_after
    from firmware_update_device_health
),
per_version as (
    select manufacturer, model, target_version as version,
           count(*) as n_updated,
           count(*) filter (where drain_before is not null and drain_after is not null)
               as n_with_battery,
           median(drain_before) as drain_before_pct_per_day,
           median(drain_after) as drain_after_pct_per_day,
           median(drain_after / drain_before) filter (where drain_before > 0.01)
               as drain_ratio,
           avg(failed_before::int) as failure_share_before,
           avg(failed_after::int) as failure_share_after,
           avg(silent_before::int) as silent_share_before,
           avg(silent_after::int) as silent_share_after,
           count(*) filter (where failed_after and not failed_before) as n_failed_new,
           count(*) filter (where failed_before and not failed_after) as n_failed_gone,
           count(*) filter (where silent_after and not silent_before) as n_silent_new,
           count(*) filter (where silent_before and not silent_after) as n_silent_gone,
           count(*) filter (where drain_before > 0.01 and drain_after > drain_before)
               as n_drain_up,
           count(*) filter (where drain_before > 0.01 and drain_after < drain_before)
               as n_drain_down
    from per_device
    group by all
),
changes as (
    -- the three changes each release is tested on, one row per release and change: the
    -- devices that began failing, going silent or draining faster after the update
    -- (n_new), and those that stopped (n_gone)
    select manufacturer, model, version, c.change, c.n_new, c.n_gone
    from per_version,
         unnest([{'change': 'failure', 'n_new': n_failed_new, 'n_gone': n_failed_gone},
                 {'change': 'silent', 'n_new': n_silent_new, 'n_gone': n_silent_gone},
                 {'change': 'drain', 'n_new': n_drain_up, 'n_gone': n_drain_down}]) as u(c)
),
sign_tests as (
    -- P(X >= n_new), X ~ Binomial(n_new + n_gone, 1/2): the exact sign test of each
    -- change; the three side by side, one row per release
    select manufacturer, model, version,
           any_value(p) filter (where change = 'failure') as failure_p,
           any_value(p) filter (where change = 'silent') as silent_p,
           any_value(p) filter (where change = 'drain') as drain_p
    from (
        select *,
               (select coalesce(sum(exp(lgamma(n_new + n_gone + 1) - lgamma(k + 1)
                        - lgamma(n_new + n_gone - k + 1) - (n_new + n_gone) * ln(2))), 1)
                from generate_series(n_new, n_new + n_gone) s(k)) as p
        from changes
    )
    group by manufacturer, model, version
),
tested as (
    select v.*, t.failure_p, t.silent_p, t.drain_p
    from per_version as v
    join sign_tests as t
        on t.manufacturer is not distinct from v.manufacturer
        and t.model is not distinct from v.model
        and t.version is not distinct from v.version
),
final as (
    select v.*,
           case when v.n_updated < p.health_min_devices then 'insufficient_data'
                when coalesce(v.n_with_battery >= p.health_min_devices
                              and v.drain_ratio >= p.health_drain_ratio
                              and v.drain_p < 0.05, false)
                  or (v.failure_share_after - v.failure_share_before >= p.health_failure_increase
                      and v.failure_p < 0.05)
                  or (v.silent_share_after - v.silent_share_before >= p.health_silent_increase
                      and v.silent_p < 0.05)
                then 'unhealthy'
                else 'healthy' end as verdict,
           concat_ws('; ',
               case when v.n_with_battery >= p.health_min_devices
                         and v.drain_ratio >= p.health_drain_ratio and v.drain_p < 0.05
                    then format('battery drain x{:.2f} after the update', v.drain_ratio) end,
               case when v.failure_share_after - v.failure_share_before
                         >= p.health_failure_increase and v.failure_p < 0.05
                    then format('failures {:.0f}% -> {:.0f}% of devices',
                                100 * v.failure_share_before, 100 * v.failure_share_after) end,
               case when v.silent_share_after - v.silent_share_before >= p.health_silent_increase
                         and v.silent_p < 0.05
                    then format('silent devices {:.0f}% -> {:.0f}%',
                                100 * v.silent_share_before, 100 * v.silent_share_after) end
           ) as reasons
    from tested v
    cross join p
)
select * from final
