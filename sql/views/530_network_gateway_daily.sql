-- Network attachment over time: devices attached to each gateway at the end of
-- each day, with the day's connects and disconnects.
-- grain: one row per gateway and UTC day, from the gateway's first session to the
--   newest event of the fleet
-- columns: day (date, UTC), n_attached (devices attached at the end of the day),
--   n_connects, n_session_ends (sessions of the gateway that ended that day),
--   capacity_devices, utilization (fraction).
create or replace view network_gateway_daily as
with deltas as (
    select gateway_id, connected_at::date as day, 1 as delta, 1 as is_connect
    from network_sessions
    union all
    select gateway_id, ended_at::date as day, -1 as delta, 0 as is_connect
    from network_sessions
    where ended_at is not null
),

per_day as (
    select
        gateway_id, day,
        sum(delta) as delta,
        sum(is_connect) as n_connects,
        count(*) - sum(is_connect) as n_session_ends
    from deltas
    group by gateway_id, day
),

span as (
    select gateway_id, min(day) as first_day
    from per_day
    group by gateway_id
),

last_day as (
    select max(day) as last_day from per_day
),

calendar as (
    select s.gateway_id, unnest(generate_series(s.first_day, l.last_day, interval 1 day))::date
        as day
    from span s
    cross join last_day l
),

final as (
    select
        c.gateway_id,
        g.site,
        c.day,
        sum(coalesce(p.delta, 0)) over (partition by c.gateway_id order by c.day) as n_attached,
        coalesce(p.n_connects, 0) as n_connects,
        coalesce(p.n_session_ends, 0) as n_session_ends,
        g.capacity_devices,
        sum(coalesce(p.delta, 0)) over (partition by c.gateway_id order by c.day)
            / g.capacity_devices as utilization
    from calendar c
    left join per_day p using (gateway_id, day)
    left join gateways g using (gateway_id)
)

select * from final
