-- Network load per zone: where the devices of each zone attach, and the load of
-- the gateways mounted in the zone.
-- grain: one row per site and zone (zones of devices or of gateways)
-- columns: n_devices (devices of the zone with connection events), n_attached,
--   n_gateways_serving (distinct gateways the zone's attached devices use),
--   n_gateways_mounted, capacity_mounted (devices), attached_mounted (devices on the
--   gateways mounted here), utilization_mounted (fraction).
create or replace view network_zone_load as
with dev as (
    select
        site, zone,
        count(*) as n_devices,
        count(*) filter (where is_attached) as n_attached,
        count(distinct gateway_id) filter (where is_attached) as n_gateways_serving
    from network_attachment
    where zone is not null
    group by site, zone
),

gw as (
    select
        site, zone,
        count(*) as n_gateways_mounted,
        sum(capacity_devices) as capacity_mounted,
        sum(n_attached) as attached_mounted
    from network_gateway_load
    where is_active and zone is not null
    group by site, zone
),

final as (
    select
        coalesce(dev.site, gw.site) as site,
        coalesce(dev.zone, gw.zone) as zone,
        coalesce(dev.n_devices, 0) as n_devices,
        coalesce(dev.n_attached, 0) as n_attached,
        coalesce(dev.n_gateways_serving, 0) as n_gateways_serving,
        coalesce(gw.n_gateways_mounted, 0) as n_gateways_mounted,
        gw.capacity_mounted,
        gw.attached_mounted,
        gw.attached_mounted / gw.capacity_mounted as utilization_mounted
    from dev
    full outer join gw on dev.site = gw.site and dev.zone = gw.zone
)

select * from final
