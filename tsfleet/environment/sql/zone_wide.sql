-- The zone environment per hour in wide form, with the daily temperature swing.
-- Reads the temporary table _env_zone_long (the result of zone_hourly.sql).
-- grain: one row per zone and hour
with wide as (
    select
        zone, hour_at,
        max(value) filter (where metric = 'temperature_c') as temperature_c,
        max(value) filter (where metric = 'humidity_pct') as humidity_pct,
        max(value) filter (where metric = 'vibration_g') as vibration_g,
        max(n_monitors) as n_monitors,
        bool_or(is_missing and value is not null) as is_interpolated
    from _env_zone_long
    group by zone, hour_at
),

final as (
    select
        *,
        max(temperature_c) over d - min(temperature_c) over d as daily_swing_c
    from wide
    window d as (partition by zone, date_trunc('day', hour_at))
)

select * from final
