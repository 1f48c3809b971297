-- Primary-metric readings of each sensor bucketed by UTC hour, so that
-- sensors reporting at different phase offsets compare hour by hour.
-- grain: one row per sensor and UTC hour with a reading of its primary metric
-- columns: hour_at (UTC hour start), value (mean of the hour, metric unit),
--          n_readings, zone_hour_key (hash of zone, metric and hour: the peer group)
create or replace view calibration_hourly as
with primary_readings as (
    select
        r.device_id,
        date_trunc('hour', r.observed_at) as hour_at,
        r.value
    from readings r
    semi join calibration_sensors s on s.device_id = r.device_id and s.metric = r.metric
),

by_hour as (
    select device_id, hour_at, avg(value) as value, count(*) as n_readings
    from primary_readings
    group by device_id, hour_at
),

final as (
    select
        h.device_id,
        s.metric,
        s.site,
        s.zone,
        s.is_reference,
        h.hour_at,
        h.value,
        h.n_readings,
        hash(s.zone, s.metric, h.hour_at) as zone_hour_key
    from by_hour h
    join calibration_sensors s on s.device_id = h.device_id
)

select * from final
