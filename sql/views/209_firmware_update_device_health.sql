-- Post-update health of each device that succeeded an update: the per-device step of
-- firmware_update_health (which pools these rows per release into its verdict).
-- Reads raw readings and, where they aged out, the hourly rollups. Compares the
-- health_window_days after the update with as many days before it; only updates whose
-- after-window has fully elapsed count. A device's row depends on its own readings and
-- events only, so a distributed run computes it per device bucket (tsfleet.scaleout) and
-- stores it in firmware_device_health; while firmware_health_source holds that run, this
-- view returns those stored rows and scans no readings (a single-node analysis clears it).
-- grain: one row per campaign and device
-- columns: manufacturer, model, target_version (the installed version), device_id,
--   health_window_days (days, each side); drain_before_pct_per_day,
--   drain_after_pct_per_day (battery drain, %/day, least squares over the window; NULL
--   with fewer than 5 battery readings on that side); is_silent_before, is_silent_after
--   (fewer days with a reading than the window); is_failed_before, is_failed_after
--   (a failure event in the window)
create view firmware_update_device_health as
with p as (
    select * from firmware_params
),
source as (
    select count(*) > 0 as is_stored from firmware_health_source
),
stored as (
    -- the rows of the last distributed run, as of the lake it read
    select campaign_id, device_id, manufacturer, model, target_version, health_window_days,
           drain_before_pct_per_day, drain_after_pct_per_day, is_silent_before,
           is_silent_after, is_failed_before, is_failed_after
    from firmware_device_health
    where (select is_stored from source)
),
updated as (
    -- empty while the stored rows are read: the joins below then scan no readings
    select c.campaign_id, c.device_id, c.manufacturer, c.model, c.target_version,
           c.succeeded_at as t, p.health_window_days as w
    from firmware_campaign_devices c
    cross join p
    where c.outcome = 'succeeded' and c.target_version is not null
      and c.succeeded_at + to_days(cast(p.health_window_days as integer)) <= p.as_of
      and not (select is_stored from source)
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
computed as (
    select u.campaign_id, u.device_id, u.manufacturer, u.model, u.target_version,
           u.w as health_window_days,
           case when b.n_battery >= 5 then b.drain end as drain_before_pct_per_day,
           case when a.n_battery >= 5 then a.drain end as drain_after_pct_per_day,
           coalesce(b.n_days, 0) < u.w as is_silent_before,
           coalesce(a.n_days, 0) < u.w as is_silent_after,
           fb.n is not null as is_failed_before,
           fa.n is not null as is_failed_after
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
final as (
    select * from stored
    union all
    select * from computed
)
select * from final
