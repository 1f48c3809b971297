-- Daily battery level per device: the mean normalized level of the day's
-- readings at their mean time, with the means of the day's first and last
-- 12 hours and whether the day holds a reset (a battery_replaced event, a rise
-- of more than 8 points from the first to the last half-day mean, or a day
-- mean more than 5 points above the previous day's that the next day keeps). The forecast reads this view: daily aggregation happens in SQL,
-- into the table battery_day_stats, refreshed incrementally from new readings (and from
-- the hourly rollup where raw readings aged out) before each forecast.
-- grain: one row per device and UTC day with battery readings
-- columns: day (date), level_pct (%), first_level_pct / last_level_pct (% means of the
-- half-days), n_readings,
-- mean_observed_at (UTC), last_observed_at (UTC), is_reset_day, next_day (date of the
-- device's next row), is_reset_day_unconfirmed (the same test without the next day's
-- confirmation: what a forecast made before next_day can know; the backtest uses it),
-- has_replacement (a battery_replaced event that day)
create or replace view battery_daily as
with by_day as (
    -- the daily sums, maintained incrementally (tsfleet.power.daystats)
    select device_id, day, level_sum / n_readings as level_pct,
           am_level_sum / nullif(am_n, 0) as first_level_pct,
           pm_level_sum / nullif(pm_n, 0) as last_level_pct,
           n_readings,
           to_timestamp(epoch_sum / n_readings)::timestamp as mean_observed_at,
           last_observed_at
    from battery_day_stats
),
events as (
    select distinct device_id, event_at::date as day
    from device_events where event = 'battery_replaced'
),
neighbours as (
    select b.*,
           lag(b.level_pct) over w as prev_level_pct,
           lead(b.level_pct) over w as next_level_pct,
           lead(b.day) over w as next_day,
           e.device_id is not null as has_replacement
    from by_day b
    left join events e using (device_id, day)
    window w as (partition by b.device_id order by b.day)
),
final as (
    select device_id, day, level_pct, first_level_pct, last_level_pct, n_readings,
           mean_observed_at, last_observed_at,
           has_replacement
           or coalesce(last_level_pct - first_level_pct > 8, false)
           or coalesce(level_pct - prev_level_pct > 5
                       and coalesce(next_level_pct, level_pct) - prev_level_pct > 5, false)
           as is_reset_day,
           next_day,
           has_replacement
           or coalesce(last_level_pct - first_level_pct > 8, false)
           or coalesce(level_pct - prev_level_pct > 5, false)
           as is_reset_day_unconfirmed,
           has_replacement
    from neighbours
)
select * from final
