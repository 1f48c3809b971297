-- Runs of hours without valid monitor data per zone and metric, from _env_zone
-- (zone_hourly.sql): all hours of one run share their previous and next
-- observed hour. is_filled: the run was interpolated.
-- params: $start, $end (UTC window)
-- grain: one row per zone, metric and gap
with missing as (
    select zone, 'temperature_c' as metric, t_prev_at as prev_at, t_next_at as next_at,
           temperature_c as value
    from _env_zone where t_missing
    union all
    select zone, 'humidity_pct', h_prev_at, h_next_at, humidity_pct
    from _env_zone where h_missing
    union all
    select zone, 'vibration_g', v_prev_at, v_next_at, vibration_g
    from _env_zone where v_missing
),

final as (
    select
        zone, metric,
        coalesce(prev_at + interval 1 hour, $start::timestamp) as gap_from,
        coalesce(next_at, $end::timestamp) as gap_to,
        count(*)::integer as hours,
        bool_and(value is not null) as is_filled
    from missing
    group by zone, metric, prev_at, next_at
)

select * from final
