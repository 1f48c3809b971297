-- Zone environment per hour from the valid environment-monitor readings
-- (temporary tables _env_observed from zone_observed.sql and _env_grid from
-- zone_grid.sql; materialized first, which keeps the ASOF joins fast).
-- Each zone, metric and hour of the window takes the mean of its monitors'
-- valid readings; an hour without one is interpolated linearly between the
-- previous and the next observed hour (found with two ASOF joins) when the
-- gap between them is at most $max_gap_hours, and stays NULL otherwise.
-- params: $max_gap_hours
-- grain: one row per zone, metric and hour
with with_prev as (
    select g.*, p.hour_at as prev_at, p.value as prev_value, p.n_monitors as prev_n
    from _env_grid as g
    asof left join _env_observed as p
        on p.zone = g.zone and p.metric = g.metric and p.hour_at <= g.hour_at
),

with_next as (
    select w.*, n.hour_at as next_at, n.value as next_value
    from with_prev as w
    asof left join _env_observed as n
        on n.zone = w.zone and n.metric = w.metric and n.hour_at >= w.hour_at
),

final as (
    select
        zone, metric, hour_at, prev_at, next_at,
        case
            when prev_at = hour_at then prev_value
            when prev_at is not null and next_at is not null
                 and date_diff('hour', prev_at, next_at) - 1 <= $max_gap_hours
            then prev_value + (next_value - prev_value)
                 * date_diff('hour', prev_at, hour_at) / date_diff('hour', prev_at, next_at)
        end as value,
        case when prev_at = hour_at then prev_n else 0 end as n_monitors,
        prev_at is distinct from hour_at as is_missing
    from with_next
)

select * from final
