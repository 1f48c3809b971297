-- Per-device exposure from the zone environment over the analysis window,
-- with the components of the stress index. Environment monitors excluded.
-- params: $start (window start, UTC), $ea_ev (activation energy, eV),
--   $cycle_swing_c (a day with at least this swing is one thermal cycle)
-- grain: one row per device
with zone_hours as (
    select
        z.*,
        temperature_c is not null and humidity_pct is not null and vibration_g is not null
            as is_complete
    from environment_zone_hourly as z
),

zone_days as (
    select zone, date_trunc('day', hour_at) as day_at, max(daily_swing_c) as swing_c
    from zone_hours
    where temperature_c is not null
    group by all
),

zone_cycles as (
    select zone, 30.0 * count(*) filter (where swing_c >= $cycle_swing_c) / count(*)
        as thermal_cycles_per_30d
    from zone_days
    group by zone
),

zone_stats as (
    select
        zone,
        count(*) filter (where is_complete) as hours_with_environment,
        avg(is_interpolated::int) filter (where is_complete) as share_hours_interpolated,
        avg(temperature_c) as mean_temperature_c,
        max(temperature_c) as max_temperature_c,
        avg(humidity_pct) as mean_humidity_pct,
        avg(vibration_g) as mean_vibration_g,
        avg(daily_swing_c) as mean_daily_swing_c,
        avg(exp($ea_ev / 8.617333e-5 * (1 / 298.15 - 1 / (temperature_c + 273.15))))
            as arrhenius_acceleration,
        24.0 * avg(vibration_g * vibration_g) as vibration_dose_g2h_per_day
    from zone_hours
    group by zone
),

devs as (
    select
        device_id, device_type, site, zone,
        date_diff('second', coalesce(installed_at, $start::timestamp), $start::timestamp)
            / (86400 * 365.25) as age_years
    from devices
    where device_id not in (select device_id from environment_monitors)
),

final as (
    select
        d.*,
        case when coalesce(s.hours_with_environment, 0) > 0 then 'zone_monitors' else 'none' end
            as env_source,
        coalesce(s.hours_with_environment, 0)::integer as hours_with_environment,
        s.share_hours_interpolated, s.mean_temperature_c, s.max_temperature_c,
        s.mean_humidity_pct, s.mean_vibration_g, s.mean_daily_swing_c,
        c.thermal_cycles_per_30d, s.arrhenius_acceleration, s.vibration_dose_g2h_per_day
    from devs as d
    left join zone_stats as s using (zone)
    left join zone_cycles as c using (zone)
)

select * from final
