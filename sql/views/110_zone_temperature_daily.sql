-- Daily temperature of each zone, as its temperature-measuring devices saw it:
-- the median over devices of each device's daily mean temperature_c, so that
-- one drifting sensor does not move the zone.
-- grain: one row per zone and UTC day with temperature readings
-- columns: day (date), temperature_c (degrees C), n_devices
create or replace view zone_temperature_daily as
with device_day as (
    -- daily means per device, maintained incrementally (tsfleet.power.daystats)
    select t.device_id, d.zone, t.day, t.temperature_sum / t.n_readings as temperature_c
    from temperature_day_stats t
    join devices d using (device_id)
),
final as (
    select zone, day, median(temperature_c) as temperature_c, count(*) as n_devices
    from device_day
    group by all
)
select * from final
