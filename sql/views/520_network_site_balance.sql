-- Network balance per site: how evenly the active gateways of a site share its
-- devices, as imbalance indices of their utilization.
-- grain: one row per site with active gateways
-- columns: n_gateways, n_devices (attached), capacity_devices, utilization (fraction,
--   devices / capacity), mean/max/min_utilization (fraction), jain_index (1 = perfectly
--   even, 1/n = one gateway carries all), gini (0 = even, towards 1 = concentrated),
--   cv (stddev / mean), max_over_mean, min_headroom (fraction, 1 - max utilization),
--   n_over_capacity, n_bottlenecks.
create or replace view network_site_balance as
with active as (
    select
        site, gateway_id, n_attached, capacity_devices, utilization, is_over_capacity,
        is_bottleneck,
        (2 * row_number() over (partition by site order by utilization, gateway_id)
         - count(*) over (partition by site) - 1) * utilization as gini_term
    from network_gateway_load
    where is_active
),

by_site as (
    select
        site,
        count(*) as n_gateways,
        sum(n_attached) as n_devices,
        sum(capacity_devices) as capacity_devices,
        sum(utilization) as sum_u,
        sum(utilization * utilization) as sum_u2,
        sum(gini_term) as gini_num,
        avg(utilization) as mean_utilization,
        max(utilization) as max_utilization,
        min(utilization) as min_utilization,
        stddev_pop(utilization) as sd_utilization,
        count(*) filter (where is_over_capacity) as n_over_capacity,
        count(*) filter (where is_bottleneck) as n_bottlenecks
    from active
    group by site
),

final as (
    select
        site,
        n_gateways,
        n_devices,
        capacity_devices,
        n_devices / capacity_devices as utilization,
        mean_utilization,
        max_utilization,
        min_utilization,
        case when sum_u2 > 0 then sum_u * sum_u / (n_gateways * sum_u2) end as jain_index,
        case when sum_u > 0 then gini_num / (n_gateways * sum_u) end as gini,
        case when mean_utilization > 0 then sd_utilization / mean_utilization end as cv,
        case when mean_utilization > 0 then max_utilization / mean_utilization end
            as max_over_mean,
        1 - max_utilization as min_headroom,
        n_over_capacity,
        n_bottlenecks
    from by_site
)

select * from final
