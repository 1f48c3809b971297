-- When each known device was last heard from, against its nominal interval.
-- grain: one row per device (registered or seen in readings)
-- columns: last_observed_at (UTC), last_received_at (UTC, when data arrived),
--          reporting_interval_s (nominal, seconds), silent_s (seconds between the
--          newest reading in the store and this device's last reading), n_metrics,
--          n_readings, is_registered
create or replace view device_last_seen as
with latest as (
    select
        device_id,
        max(observed_at) as last_observed_at,
        max(last_received_at) as last_received_at,
        count(*) as n_metrics,
        sum(n_readings) as n_readings
    from device_latest
    group by device_id
),

fleet_now as (
    select max(observed_at) as now_at from device_latest
),

final as (
    select
        coalesce(d.device_id, l.device_id) as device_id,
        l.last_observed_at,
        cast(l.last_received_at as timestamp) as last_received_at,
        d.reporting_interval_s,
        date_diff('second', l.last_observed_at, f.now_at) as silent_s,
        coalesce(l.n_metrics, 0) as n_metrics,
        coalesce(l.n_readings, 0) as n_readings,
        d.device_id is not null as is_registered
    from devices as d
    full outer join latest as l on l.device_id = d.device_id
    cross join fleet_now as f
)

select * from final
