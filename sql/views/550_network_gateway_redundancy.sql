-- Network redundancy per gateway: how many of its devices would be stranded if
-- it failed, and how many have somewhere else to go.
-- grain: one row per gateway
-- columns: n_devices (attached, or last attached for a down gateway), n_stranded_if_failed
--   (devices with no usable alternative), n_with_alternative, n_targets (distinct failover
--   targets), top_target_gateway_id (the target most of them would use), n_overflow
--   (devices beyond the targets' headroom).
create or replace view network_gateway_redundancy as
with mine as (
    select r.*
    from network_device_redundancy r
    join network_gateway_status s using (gateway_id)
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

targets as (
    select
        gateway_id,
        count(*) as n_targets,
        arg_max(target_gateway_id, n_devices) as top_target_gateway_id,
        sum(greatest(n_devices - greatest(target_headroom_devices, 0), 0)) as n_overflow
    from network_failover_targets
    group by gateway_id
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
    from network_gateway_status s
    left join per_gw p using (gateway_id)
    left join targets t using (gateway_id)
)

select * from final
