-- Normalized battery level per device over time, with charging and battery
-- replacements recognized as resets (the start of a new discharge segment),
-- not as negative discharge. A reset is a battery_replaced event since the
-- previous reading, or a rise of more than 8 points that the next reading keeps.
-- grain: one row per device and battery reading (observed_at, UTC)
-- columns: level_pct (%), voltage_v (V), source_metric, is_reset, segment_no (0 = first segment)
create or replace view battery_level as
with ordered as (
    select *,
           lag(level_pct) over w as prev_level_pct,
           lead(level_pct) over w as next_level_pct,
           lag(observed_at) over w as prev_observed_at
    from battery_readings
    window w as (partition by device_id order by observed_at)
),
replaced as (
    select device_id, event_at from device_events where event = 'battery_replaced'
),
flagged as (
    select o.*,
           coalesce((o.level_pct - o.prev_level_pct > 8
                     and coalesce(o.next_level_pct, o.level_pct) - o.prev_level_pct > 8)
                    or exists (select 1 from replaced e
                               where e.device_id = o.device_id and e.event_at <= o.observed_at
                                 and e.event_at > o.prev_observed_at), false) as is_reset
    from ordered o
),
final as (
    select device_id, observed_at, level_pct, voltage_v, source_metric, is_reset,
           sum(is_reset::int) over (partition by device_id order by observed_at) as segment_no
    from flagged
)
select * from final
