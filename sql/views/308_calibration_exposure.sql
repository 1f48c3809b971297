-- Environmental exposure of each zone: mean temperature, humidity and
-- vibration read by any device of the zone (environment monitors and
-- sensors alike), for relating drift rates to placement. Raw readings where
-- kept and the hourly rollup (weighted by its reading count) where retention
-- aged them out: the union of readings_history, without its per-hour grouping.
-- grain: one row per zone
-- columns: temperature_c (degC), humidity_pct (%RH), vibration_g (g RMS), n_readings
create or replace view calibration_exposure as
with raw as (
    select device_id, metric, value, 1::bigint as n_readings
    from readings
    where metric in ('temperature_c', 'humidity_pct', 'vibration_g')
),

late_raw_hours as (
    select distinct r.device_id, r.metric, date_trunc('hour', r.observed_at) as hour_at
    from readings r
    where r.observed_at < (select max(cutoff_at) from retention_runs)
),

rolled as (
    select u.device_id, u.metric, u.value_mean as value, u.n_readings
    from readings_hourly_rollup u
    anti join late_raw_hours w
        on w.device_id = u.device_id and w.metric = u.metric and w.hour_at = u.hour_at
    where u.metric in ('temperature_c', 'humidity_pct', 'vibration_g')
),

zone_readings as (
    select d.zone, x.metric, x.value, x.n_readings
    from (select * from raw union all select * from rolled) x
    join devices d on d.device_id = x.device_id
),

final as (
    select
        zone,
        sum(value * n_readings) filter (where metric = 'temperature_c')
            / sum(n_readings) filter (where metric = 'temperature_c') as temperature_c,
        sum(value * n_readings) filter (where metric = 'humidity_pct')
            / sum(n_readings) filter (where metric = 'humidity_pct') as humidity_pct,
        sum(value * n_readings) filter (where metric = 'vibration_g')
            / sum(n_readings) filter (where metric = 'vibration_g') as vibration_g,
        sum(n_readings) as n_readings
    from zone_readings
    group by zone
)

select * from final
