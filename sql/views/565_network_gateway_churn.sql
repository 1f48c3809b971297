-- Network churn per gateway: connects over the churn window and how many of the
-- connecting devices flap.
-- grain: one row per gateway with connects in the churn window
-- columns: n_connects, n_devices (distinct devices connecting), connects_per_day (1/day),
--   n_flapping_devices, window_days (days).
create or replace view network_gateway_churn as
with settings as (
    select max(value) filter (where name = 'churn_window_days') as churn_window_days
    from network_settings
),

bounds as (
    select a.as_of - to_seconds(st.churn_window_days * 86400) as since, st.churn_window_days
    from (select max(as_of) as as_of from network_attachment) a
    cross join settings st
),

connects as (
    select c.gateway_id, c.device_id
    from connections c
    cross join bounds b
    where c.event = 'connect' and c.event_at > b.since
),

final as (
    select
        c.gateway_id,
        g.site,
        count(*) as n_connects,
        count(distinct c.device_id) as n_devices,
        count(*) / any_value(b.churn_window_days) as connects_per_day,
        count(distinct c.device_id) filter (where ch.is_flapping) as n_flapping_devices,
        any_value(b.churn_window_days) as window_days
    from connects c
    cross join bounds b
    left join network_device_churn ch on ch.device_id = c.device_id
    left join gateways g on g.gateway_id = c.gateway_id
    group by c.gateway_id, g.site
)

select * from final
