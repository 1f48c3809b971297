-- Network redundancy per device: how many usable gateways a device can reach, and
-- the best one other than its own.
-- grain: one row per device with connection events
-- columns: gateway_id (current or last gateway), is_attached, n_usable_links (usable
--   links to active gateways, its own included), n_alternatives (usable, not its own),
--   own_rssi_dbm (median heard RSSI at its gateway, dBm), best_alternative_gateway_id and
--   best_alternative_rssi_dbm (dBm), is_single_point_of_failure (exactly one usable
--   gateway), is_stranded (no usable gateway at all).
create or replace view network_device_redundancy as
with per_device as (
    select
        a.device_id,
        count(*) filter (where l.is_usable) as n_usable_links,
        count(*) filter (where l.is_usable and l.gateway_id <> a.gateway_id) as n_alternatives,
        arg_max(l.gateway_id, l.rssi_dbm)
            filter (where l.is_usable and l.gateway_id <> a.gateway_id)
            as best_alternative_gateway_id,
        max(l.rssi_dbm) filter (where l.is_usable and l.gateway_id <> a.gateway_id)
            as best_alternative_rssi_dbm,
        max(l.rssi_dbm) filter (where l.gateway_id = a.gateway_id) as own_rssi_dbm
    from network_attachment a
    join network_links l on l.device_id = a.device_id
    group by a.device_id
),

final as (
    select
        a.device_id,
        a.site,
        a.zone,
        a.gateway_id,
        a.is_attached,
        coalesce(p.n_usable_links, 0) as n_usable_links,
        coalesce(p.n_alternatives, 0) as n_alternatives,
        p.own_rssi_dbm,
        p.best_alternative_gateway_id,
        p.best_alternative_rssi_dbm,
        coalesce(p.n_usable_links, 0) = 1 as is_single_point_of_failure,
        coalesce(p.n_usable_links, 0) = 0 as is_stranded
    from network_attachment a
    left join per_device p using (device_id)
)

select * from final
