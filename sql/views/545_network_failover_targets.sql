-- Network failover targets: if a gateway failed, where its devices would go (each
-- to its strongest usable alternative) and whether the target has room.
-- grain: one row per gateway and failover target gateway
-- columns: n_devices (devices that would move there), target_headroom_devices (devices
--   the target can still take), would_exceed_capacity (n_devices > headroom).
create or replace view network_failover_targets as
with moving as (
    select gateway_id, best_alternative_gateway_id as target_gateway_id, count(*) as n_devices
    from network_device_redundancy
    where best_alternative_gateway_id is not null
        and (is_attached or gateway_id in (select gateway_id from network_gateway_status
                                           where status = 'down'))
    group by gateway_id, best_alternative_gateway_id
),

final as (
    select
        m.gateway_id,
        m.target_gateway_id,
        m.n_devices,
        l.headroom_devices as target_headroom_devices,
        m.n_devices > l.headroom_devices as would_exceed_capacity
    from moving m
    left join network_gateway_load l on l.gateway_id = m.target_gateway_id
)

select * from final
