-- Consistency and compliance: per group of devices, how uniform their firmware is.
-- grain: one row per grouping, manufacturer, model and group_value
-- columns: grouping (model_site | model_zone | model_hardware_rev | model); group_value;
--   n_devices (reporting devices); n_versions (distinct versions); majority_version and
--   majority_share_pct (%); n_on_target and target_share_pct (% of devices on the newest
--   target release compatible with their hardware revision); n_deviating and
--   deviating_devices (comma-separated, sorted): devices not on their target version, or
--   not on the majority version where the catalog names no target
create view firmware_consistency as
with st as (
    select device_id, manufacturer, model, hardware_rev, site, zone, version, version_rank,
           target_rank,
           target_rank is not null and version_rank = target_rank as is_on_target
    from firmware_device_status
    where version is not null
),
grouped as (
    select 'model_site' as grouping, site as group_value, * from st
    union all
    select 'model_zone', zone, * from st
    union all
    select 'model_hardware_rev', coalesce(hardware_rev, '?'), * from st
    union all
    select 'model', model, * from st
),
per_version as (
    select grouping, manufacturer, model, group_value, version, count(*) as n,
           max(version_rank) as version_rank
    from grouped
    group by all
),
majority as (
    select grouping, manufacturer, model, group_value,
           arg_max(version, (n, coalesce(version_rank, -1), version)) as majority_version,
           max(n) as n_majority,
           count(*) as n_versions
    from per_version
    group by all
),
final as (
    select g.grouping, g.manufacturer, g.model, g.group_value,
           count(*) as n_devices,
           m.n_versions,
           m.majority_version,
           round(100.0 * m.n_majority / count(*), 2) as majority_share_pct,
           count(*) filter (where g.is_on_target) as n_on_target,
           round(100.0 * count(*) filter (where g.is_on_target) / count(*), 2)
               as target_share_pct,
           count(*) filter (where case when g.target_rank is not null then not g.is_on_target
                                       else g.version <> m.majority_version end) as n_deviating,
           string_agg(g.device_id, ',' order by g.device_id) filter (
               where case when g.target_rank is not null then not g.is_on_target
                          else g.version <> m.majority_version end) as deviating_devices
    from grouped g
    join majority m using (grouping, manufacturer, model, group_value)
    group by g.grouping, g.manufacturer, g.model, g.group_value, m.n_versions,
             m.majority_version, m.n_majority
)
select * from final
