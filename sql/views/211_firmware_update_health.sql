-- Post-update health: does a release hurt devices even when every install "succeeded"?
-- Pools the per-device rows of firmware_update_device_health (devices that succeeded an
-- update, the health_window_days after it against as many days before) per release.
-- grain: one row per manufacturer, model and installed version
-- columns: n_updated (devices), n_with_battery (devices with battery_pct on both sides);
--   drain_before_pct_per_day, drain_after_pct_per_day (median battery drain, %/day);
--   drain_ratio (median of each device's after/before drain); failure_share_before/after
--   (share of devices with a failure event); silent_share_before/after (share of devices
--   with a whole day without any reading); verdict (healthy | unhealthy | insufficient_data)
--   and the reasons for it
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
           avg(silent_after::int) as silent_share_after
    from per_device
    group by all
),
final as (
    select v.*,
           case when v.n_updated < p.health_min_devices then 'insufficient_data'
                when coalesce(v.n_with_battery >= p.health_min_devices
                              and v.drain_ratio >= p.health_drain_ratio, false)
                  or v.failure_share_after - v.failure_share_before >= p.health_failure_increase
                  or v.silent_share_after - v.silent_share_before >= p.health_silent_increase
                then 'unhealthy'
                else 'healthy' end as verdict,
           concat_ws('; ',
               case when v.n_with_battery >= p.health_min_devices
                         and v.drain_ratio >= p.health_drain_ratio
                    then format('battery drain x{:.2f} after the update', v.drain_ratio) end,
               case when v.failure_share_after - v.failure_share_before
                         >= p.health_failure_increase
                    then format('failures {:.0f}% -> {:.0f}% of devices',
                                100 * v.failure_share_before, 100 * v.failure_share_after) end,
               case when v.silent_share_after - v.silent_share_before >= p.health_silent_increase
                    then format('silent devices {:.0f}% -> {:.0f}%',
                                100 * v.silent_share_before, 100 * v.silent_share_after) end
           ) as reasons
    from per_version v
    cross join p
)
select * from final
