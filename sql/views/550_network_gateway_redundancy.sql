-- Network redundancy per gateway: how many of its devices would be stranded if
-- it failed, and how many have somewhere else to go.
-- grain: one row per gateway
-- columns: n_devices (attached, or last attached for a down gateway), n_stranded_if_failed
--   (devices with no usable alternative), n_with_alternative, n_targets (distinct failover
--   targets), top_target_gateway_id (the target most of them would use), n_overflow
--   (devices beyond the targets' headroom).
create or replace view network_gateway_redundancy as
with status as (
    select gateway_id, site, status from network_gateway_status
),

load as (
    select gateway_id, headroom_devices from network_gateway_load
),

mine as materialized (
    select r.gateway_id, r.n_alternatives, r.best_alternative_gateway_id
    from network_device_redundancy r
    join status s using (gateway_id)
    where r.is_attached or s.status = 'down'
),

per_gw as (
    select
        gateway_id,
        count(*) as n_devices,
        count(*) filter (where n_alternatives = 0) as n_stranded_if_failed,
        count(*) filter (where n_alternatives > 0) as n_with_alternative
    from mine
    group by gateway_id
),

moving as (
    select gateway_id, best_alternative_gateway_id as target_gateway_id, count(*) as n_devices
    from mine
    where best_alternative_gateway_id is not null
    group by gateway_id, best_alternative_gateway_id
),

targets as (
    select
        m.gateway_id,
        count(*) as n_targets,
        arg_max(m.target_gateway_id, m.n_devices) as top_target_gateway_id,
        sum(greatest(m.n_devices - greatest(l.headroom_devices, 0), 0)) as n_overflow
    from moving m
    left join load l on l.gateway_id = m.target_gateway_id
    group by m.gateway_id
),

final as (
    select
        s.gateway_id,
        s.site,
        s.status,
        coalesce(p.n_devices, 0) as n_devices,
        coalesce(p.n_stranded_if_failed, 0) as n_stranded_if_failed,
        coalesce(p.n_with_alternative, 0) as n_with_alternative,
        coalesce(t.n_targets, 0) as n_targets,
        t.top_target_gateway_id,
        coalesce(t.n_overflow, 0) as n_overflow
    from status s
    left join per_gw p using (gateway_id)
    left join targets t using (gateway_id)
)

select * from final
