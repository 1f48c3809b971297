-- Network redundancy per device: how many usable gateways a device can reach, and
-- the best one other than its own.
-- grain: one row per device with connection events
-- columns: gateway_id (current or last gateway), is_attached, n_usable_links (usable
--   links to active gateways, its own included), n_alternatives (usable, not its own),
--   own_rssi_dbm (median heard RSSI at its gateway, dBm), best_alternative_gateway_id and
--   best_alternative_rssi_dbm (dBm), is_single_point_of_failure (exactly one usable
--   gateway), is_stranded (no usable gateway at all).
create or replace view network_device_redundancy as
with usable as (
    select device_id, gateway_id, rssi_dbm
    from network_links
    where is_usable
),

alternatives as (
    select
        a.device_id,
        count(*) as n_alternatives,
        arg_max(u.gateway_id, u.rssi_dbm) as best_alternative_gateway_id,
        max(u.rssi_dbm) as best_alternative_rssi_dbm
    from network_attachment a
    join usable u on u.device_id = a.device_id and u.gateway_id <> a.gateway_id
    group by a.device_id
),

n_usable as (
    select device_id, count(*) as n_usable_links
    from usable
    group by device_id
),

final as (
    select
        a.device_id,
        a.site,
        a.zone,
        a.gateway_id,
        a.is_attached,
        coalesce(n.n_usable_links, 0) as n_usable_links,
        coalesce(alt.n_alternatives, 0) as n_alternatives,
        own.rssi_dbm as own_rssi_dbm,
        alt.best_alternative_gateway_id,
        alt.best_alternative_rssi_dbm,
        coalesce(n.n_usable_links, 0) = 1 as is_single_point_of_failure,
        coalesce(n.n_usable_links, 0) = 0 as is_stranded
    from network_attachment a
    left join n_usable n using (device_id)
    left join alternatives alt using (device_id)
    left join network_links own on own.device_id = a.device_id and own.gateway_id = a.gateway_id
)

select * from final
