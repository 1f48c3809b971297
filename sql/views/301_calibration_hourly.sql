-- Primary-metric readings of each sensor bucketed by UTC hour, so that
-- sensors reporting at different phase offsets compare hour by hour.
-- grain: one row per sensor and UTC hour with a reading of its primary metric
-- columns: hour_at (UTC hour start), value (mean of the hour, metric unit),
--          n_readings
create or replace view calibration_hourly as
with primary_readings as (
    select
        r.device_id,
        r.metric,
        s.site,
        s.zone,
        s.is_reference,
        date_trunc('hour', r.observed_at) as hour_at,
        r.value
    from readings r
    join calibration_sensors s on s.device_id = r.device_id and s.metric = r.metric
),

final as (
    select
        device_id,
        metric,
        site,
        zone,
        is_reference,
        hour_at,
        avg(value) as value,
        count(*) as n_readings
    from primary_readings
    group by device_id, metric, site, zone, is_reference, hour_at
)

select * from final
