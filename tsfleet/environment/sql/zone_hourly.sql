-- Zone environment per hour from the valid environment-monitor hours
-- (temporary tables _env_observed from zone_observed.sql and _env_grid from
-- zone_grid.sql). Each zone, metric and hour of the window takes the mean of its
-- monitors' valid hours; an hour without one is interpolated linearly between
-- the previous and the next observed hour of that metric when the gap between
-- them is at most $max_gap_hours, and stays NULL otherwise. The previous and
-- next observed hours come from window functions (last/first value ignoring
-- NULLs) over each zone's series, in wide form (one row per zone-hour, a column
-- per metric): 5-10x faster here than ASOF joins of a long grid. The *_prev_at /
-- *_next_at columns identify each gap (gaps.sql). daily_swing_c: max - min
-- temperature of the zone's calendar day (UTC), degC.
-- params: $max_gap_hours
-- grain: one row per zone and hour
with joined as (
    select
        g.zone, g.hour_at, o.temperature_c as t, o.humidity_pct as h, o.vibration_g as v,
        coalesce(o.n_monitors, 0) as n_monitors,
        case when o.temperature_c is not null then g.hour_at end as t_at,
        case when o.humidity_pct is not null then g.hour_at end as h_at,
        case when o.vibration_g is not null then g.hour_at end as v_at
    from _env_grid as g
    left join _env_observed as o using (zone, hour_at)
),

neighbours as (
    select
        *,
        last_value(t_at ignore nulls) over before as t_prev_at,
        last_value(t ignore nulls) over before as t_prev,
        first_value(t_at ignore nulls) over after as t_next_at,
        first_value(t ignore nulls) over after as t_next,
        last_value(h_at ignore nulls) over before as h_prev_at,
        last_value(h ignore nulls) over before as h_prev,
        first_value(h_at ignore nulls) over after as h_next_at,
        first_value(h ignore nulls) over after as h_next,
        last_value(v_at ignore nulls) over before as v_prev_at,
        last_value(v ignore nulls) over before as v_prev,
        first_value(v_at ignore nulls) over after as v_next_at,
        first_value(v ignore nulls) over after as v_next
    from joined
    window
        before as (partition by zone order by hour_at
                   rows between unbounded preceding and current row),
        after as (partition by zone order by hour_at
                  rows between current row and unbounded following)
),

filled as (
    select
        zone, hour_at, n_monitors,
        t_at is null as t_missing, t_prev_at, t_next_at,
        h_at is null as h_missing, h_prev_at, h_next_at,
        v_at is null as v_missing, v_prev_at, v_next_at,
        coalesce(t, case when date_diff('hour', t_prev_at, t_next_at) - 1 <= $max_gap_hours
                         then t_prev + (t_next - t_prev) * date_diff('hour', t_prev_at, hour_at)
                              / date_diff('hour', t_prev_at, t_next_at) end) as temperature_c,
        coalesce(h, case when date_diff('hour', h_prev_at, h_next_at) - 1 <= $max_gap_hours
                         then h_prev + (h_next - h_prev) * date_diff('hour', h_prev_at, hour_at)
                              / date_diff('hour', h_prev_at, h_next_at) end) as humidity_pct,
        coalesce(v, case when date_diff('hour', v_prev_at, v_next_at) - 1 <= $max_gap_hours
                         then v_prev + (v_next - v_prev) * date_diff('hour', v_prev_at, hour_at)
                              / date_diff('hour', v_prev_at, v_next_at) end) as vibration_g
    from neighbours
),

final as (
    select
        *,
        (t_missing and temperature_c is not null) or (h_missing and humidity_pct is not null)
            or (v_missing and vibration_g is not null) as is_interpolated,
        max(temperature_c) over d - min(temperature_c) over d as daily_swing_c
    from filled
    window d as (partition by zone, date_trunc('day', hour_at))
)

select * from final
