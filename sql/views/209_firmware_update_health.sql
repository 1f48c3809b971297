-- Post-update health: does a release hurt devices even when every install "succeeded"?
-- Reads raw readings and, where they aged out, the hourly rollups.
-- Compares, for devices that succeeded an update, the health_window_days after the update
-- with as many days before it; only updates whose after-window has fully elapsed count.
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
updated as (
    select c.campaign_id, c.device_id, c.manufacturer, c.model, c.target_version,
           c.succeeded_at as t, p.health_window_days as w
    from firmware_campaign_devices c
    cross join p
    where c.outcome = 'succeeded' and c.target_version is not null
      and c.succeeded_at + to_days(cast(p.health_window_days as integer)) <= p.as_of
),
history as (
    -- raw readings where kept; the hourly rollup (its mean, at the middle of the hour)
    -- where retention deleted them, so old updates keep their verdict
    select device_id, metric, observed_at, value from readings
    union all
    select device_id, metric, hour_at + interval 30 minute, value_mean
    from readings_hourly_rollup
),
rd as (
    select u.campaign_id, u.device_id, r.metric, r.value,
           date_diff('second', u.t, r.observed_at) / 86400.0 as day_rel
    from updated u
    join history r
      on r.device_id = u.device_id
     and r.observed_at >= u.t - to_days(cast(u.w as integer))
     and r.observed_at < u.t + to_days(cast(u.w as integer))
),
sides as (
    select campaign_id, device_id, day_rel >= 0 as is_after,
           -regr_slope(value, day_rel) filter (where metric = 'battery_pct') as drain,
           count(*) filter (where metric = 'battery_pct') as n_battery,
           count(distinct floor(day_rel)) as n_days
    from rd
    group by all
),
fails as (
    select u.campaign_id, u.device_id, e.event_at >= u.t as is_after, count(*) as n
    from updated u
    join device_events e
      on e.device_id = u.device_id and e.event = 'failure'
     and e.event_at >= u.t - to_days(cast(u.w as integer))
     and e.event_at < u.t + to_days(cast(u.w as integer))
    group by all
),
per_device as (
    select u.manufacturer, u.model, u.target_version, u.device_id, u.w,
           case when b.n_battery >= 5 then b.drain end as drain_before,
           case when a.n_battery >= 5 then a.drain end as drain_after,
           coalesce(b.n_days, 0) < u.w as silent_before,
           coalesce(a.n_days, 0) < u.w as silent_after,
           fb.n is not null as failed_before,
           fa.n is not null as failed_after
    from updated u
    left join sides b on b.campaign_id = u.campaign_id and b.device_id = u.device_id
                     and not b.is_after
    left join sides a on a.campaign_id = u.campaign_id and a.device_id = u.device_id
                     and a.is_after
    left join fails fb on fb.campaign_id = u.campaign_id and fb.device_id = u.device_id
                      and not fb.is_after
    left join fails fa on fa.campaign_id = u.campaign_id and fa.device_id = u.device_id
                      and fa.is_after
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
