-- Environment per device over time. For the factor a device measures itself
-- (devices.measures is temperature_c, humidity_pct or vibration_g) its own
-- plausible reading of that hour is used, time-aligned with an ASOF join (the
-- latest own reading at or before the end of the hour; from the hourly rollup's
-- last value where retention aged the raw readings out); every other factor,
-- and every hour without an own reading, comes from the zone's environment
-- monitors (environment_zone_hourly, written by fleet.environment.analyze()).
-- Filter by device_id: the view is evaluated lazily.
-- grain: one row per device (environment monitors excluded) and UTC hour of the analysis window
-- columns: device_id, zone, hour_at (UTC), temperature_c (degC), humidity_pct (%RH),
--   vibration_g (g RMS), own_metric (the factor measured by the device, or NULL),
--   is_own (the own_metric value is the device's own reading), is_interpolated
--   (the zone values were interpolated across a short gap)
create or replace view environment_device_hourly as
with devs as (
    select
        device_id, zone,
        case when measures in ('temperature_c', 'humidity_pct', 'vibration_g')
             then measures end as own_metric
    from devices
    where device_id not in (select device_id from environment_monitors)
),

-- own readings over the whole history: raw where kept; where retention aged them
-- out, the last reading of each hour from the hourly rollup (its value_last at
-- last_observed_at), which is what the ASOF join below picks from an hour anyway
own_history as (
    select r.device_id, r.metric, r.observed_at, r.value
    from readings as r
    union all
    select u.device_id, u.metric, u.last_observed_at, u.value_last
    from readings_hourly_rollup as u
),

own_readings as (
    select r.device_id, r.observed_at, r.value
    from own_history as r
    join devs as d on d.device_id = r.device_id and r.metric = d.own_metric
    where case r.metric
              when 'temperature_c' then r.value between -40 and 85
              when 'humidity_pct' then r.value > 0 and r.value <= 100
              else r.value <= 16
          end
),

device_hours as (
    select d.device_id, d.zone, d.own_metric, z.hour_at,
           z.hour_at + interval 1 hour as hour_end,
           z.temperature_c, z.humidity_pct, z.vibration_g, z.is_interpolated
    from devs as d
    join environment_zone_hourly as z on z.zone = d.zone
),

aligned as (
    select h.*, o.observed_at as own_observed_at, o.value as own_value
    from device_hours as h
    asof left join own_readings as o
        on o.device_id = h.device_id and o.observed_at < h.hour_end
),

final as (
    select
        device_id, zone, hour_at,
        case when own_metric = 'temperature_c' and own_observed_at >= hour_at
             then own_value else temperature_c end as temperature_c,
        case when own_metric = 'humidity_pct' and own_observed_at >= hour_at
             then own_value else humidity_pct end as humidity_pct,
        case when own_metric = 'vibration_g' and own_observed_at >= hour_at
             then own_value else vibration_g end as vibration_g,
        own_metric,
        coalesce(own_observed_at >= hour_at, false) as is_own,
        is_interpolated
    from aligned
)

select * from final
