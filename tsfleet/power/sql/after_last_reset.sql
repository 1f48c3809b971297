-- The level after the reset of each given device whose last day holds one (a battery
-- swap, a charge): the median of the day's readings from the reset's end on, at their
-- mean time. The reset ends at the day's last battery_replaced event, or at its last
-- reading that is more than $rise_pct above the lowest of the hour before it while the
-- day's readings from it on stay so on average (the first reading of a new battery; the
-- top of a charge ramp, whatever the reporting interval; a lone high reading of a noisy
-- gauge is not kept), whichever is later. Raw readings only: a day whose readings aged
-- out gives no row.
-- parameters: $devices (varchar[]), $days (date[], each device's last day), $cut
-- (timestamp or null: readings before it only), $rise_pct (points)
-- grain: one row per given device with readings on its last day
-- columns: device_id, level_pct (%), epoch_s (mean observation time, epoch seconds)
with last_day as (
    select unnest($devices::varchar[]) as device_id, unnest($days::date[]) as day
),
day_readings as (
    select b.device_id, b.observed_at, b.level_pct
    from battery_readings b
    join last_day l
      on l.device_id = b.device_id
     and b.observed_at >= l.day and b.observed_at < l.day + 1
    where $cut::timestamp is null or b.observed_at < $cut::timestamp
),
marked as (
    select *,
           min(level_pct) over (partition by device_id order by observed_at
                                range between interval 1 hour preceding
                                          and interval 1 microsecond preceding) as low_before,
           avg(level_pct) over (partition by device_id order by observed_at
                                rows between current row and unbounded following) as mean_from
    from day_readings
),
ends as (
    select device_id,
           max(observed_at) filter (where level_pct - low_before > $rise_pct
                                    and mean_from - low_before > $rise_pct) as reset_end_at
    from marked
    group by device_id
    union all
    select e.device_id, max(e.event_at)
    from device_events e
    join last_day l
      on l.device_id = e.device_id
     and e.event_at >= l.day and e.event_at < l.day + 1
    where e.event = 'battery_replaced'
      and ($cut::timestamp is null or e.event_at < $cut::timestamp)
    group by e.device_id
),
reset as (
    select device_id, max(reset_end_at) as reset_end_at from ends group by device_id
),
final as (
    select d.device_id, median(d.level_pct) as level_pct,
           avg(epoch(d.observed_at)) as epoch_s
    from day_readings d
    join reset r using (device_id)
    where d.observed_at >= r.reset_end_at
    group by d.device_id
)
select * from final
