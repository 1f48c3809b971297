-- Environment monitors (device_type env_monitor) with their position in the
-- environment analysis's arrays: environment_monitor_readings selects them, and
-- tsfleet.environment reads the monitors' raw and rolled-up hours keyed by
-- monitor_index (tsfleet/environment/sql/monitor_raw.sql, monitor_rollup.sql,
-- monitors.sql).
-- grain: one row per environment monitor
-- columns: device_id, zone, site, monitor_index (0-based, in device_id order)
create or replace view environment_monitors as
with monitors as (
    select device_id, zone, site
    from devices
    where device_type = 'env_monitor'
),

final as (
    select device_id, zone, site,
           (row_number() over (order by device_id) - 1)::integer as monitor_index
    from monitors
)

select * from final
