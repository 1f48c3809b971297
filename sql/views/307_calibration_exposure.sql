-- Environmental exposure of each zone: mean temperature, humidity and
-- vibration read by any device of the zone (environment monitors and
-- sensors alike), for relating drift rates to placement.
-- grain: one row per zone
-- columns: temperature_c (degC), humidity_pct (%RH), vibration_g (g RMS), n_readings
create or replace view calibration_exposure as
with zone_readings as (
    select d.zone, r.metric, r.value
    from readings r
    join devices d on d.device_id = r.device_id
    where r.metric in ('temperature_c', 'humidity_pct', 'vibration_g')
),

final as (
    select
        zone,
        avg(value) filter (where metric = 'temperature_c') as temperature_c,
        avg(value) filter (where metric = 'humidity_pct') as humidity_pct,
        avg(value) filter (where metric = 'vibration_g') as vibration_g,
        count(*) as n_readings
    from zone_readings
    group by zone
)

select * from final
