-- Inventory: how many devices run each version, by model, hardware revision, site and zone.
-- grain: one row per dimension, manufacturer, model, group_value and version
-- columns: dimension (model | hardware_rev | site | zone); group_value (the model, revision,
--   site or zone); version_rank (order within the model); n_devices (count);
--   share_pct (% of the group's reporting devices)
create view firmware_distribution as
with cur as (
    select manufacturer, model, hardware_rev, site, zone, version
    from firmware_current
    where version is not null
),
dims as (
    select 'model' as dimension, manufacturer, model, model as group_value, version from cur
    union all
    select 'hardware_rev', manufacturer, model, coalesce(hardware_rev, '?'), version from cur
    union all
    select 'site', manufacturer, model, site, version from cur
    union all
    select 'zone', manufacturer, model, zone, version from cur
),
counted as (
    select dimension, manufacturer, model, group_value, version, count(*) as n_devices
    from dims
    group by all
),
final as (
    select c.dimension, c.manufacturer, c.model, c.group_value, c.version, v.version_rank,
           c.n_devices,
           round(100.0 * c.n_devices / sum(c.n_devices) over (
               partition by c.dimension, c.manufacturer, c.model, c.group_value), 2) as share_pct
    from counted c
    left join firmware_versions v
        on v.manufacturer = c.manufacturer and v.model = c.model and v.version = c.version
)
select * from final
