-- Environment monitors with their position in the environment analysis's arrays.
-- A device is an environment monitor when devices.is_environment_monitor is true,
-- or when that is NULL and its device_type is listed in environment_monitor_types
-- (shipped with env_monitor). Every environment query excludes these devices
-- from the analysed fleet and takes the zone environment from them: environment_monitor_readings selects them, and
-- tsfleet.environment reads the monitors' raw and rolled-up hours keyed by
-- monitor_index (tsfleet/environment/sql/monitor_raw.sql, monitor_rollup.sql,
-- monitors.sql).
-- grain: one row per environment monitor
-- columns: device_id, zone, site, monitor_index (0-based, in device_id order)
create or replace view environment_monitors as
with monitors as (
    select d.device_id, d.zone, d.site
    from devices as d
    left join environment_monitor_types as t using (device_type)
    where coalesce(d.is_environment_monitor, t.device_type is not null)
),

final as (
    select device_id, zone, site,
           (row_number() over (order by device_id) - 1)::integer as monitor_index
    from monitors
)

select * from final
