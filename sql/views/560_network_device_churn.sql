-- Network churn per device: connects and disconnects over the churn window
-- (setting churn_window_days before the newest connect/disconnect event).
-- grain: one row per device with connection events
-- columns: n_connects, n_disconnects, n_gateways (distinct gateways connected to),
--   connects_per_day (1/day), is_flapping (connects_per_day above the setting
--   flapping_connects_per_day), window_days (days).
create or replace view network_device_churn as
with settings as (
    select
        max(value) filter (where name = 'churn_window_days') as churn_window_days,
        max(value) filter (where name = 'flapping_connects_per_day') as flapping_per_day
    from network_settings
),

bounds as (
    select a.as_of - to_seconds(st.churn_window_days * 86400) as since, st.*
    from (select max(as_of) as as_of from network_attachment) a
    cross join settings st
),

counts as (
    select
        c.device_id,
        count(*) filter (where c.event = 'connect') as n_connects,
        count(*) filter (where c.event = 'disconnect') as n_disconnects,
        count(distinct c.gateway_id) filter (where c.event = 'connect') as n_gateways
    from connections c
    cross join bounds b
    where c.event in ('connect', 'disconnect') and c.event_at > b.since
    group by c.device_id
),

final as (
    select
        a.device_id,
        a.site,
        a.zone,
        a.gateway_id,
        coalesce(c.n_connects, 0) as n_connects,
        coalesce(c.n_disconnects, 0) as n_disconnects,
        coalesce(c.n_gateways, 0) as n_gateways,
        coalesce(c.n_connects, 0) / b.churn_window_days as connects_per_day,
        coalesce(c.n_connects, 0) / b.churn_window_days > b.flapping_per_day as is_flapping,
        b.churn_window_days as window_days
    from network_attachment a
    cross join bounds b
    left join counts c using (device_id)
)

select * from final
