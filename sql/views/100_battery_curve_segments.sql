-- The open-circuit discharge curve of each chemistry (battery_curve_points) as
-- segments between neighbouring points, for converting a voltage to a level:
-- a voltage v in [v_from, v_to) reads as greatest(0, least(100,
-- l_lo + (v - v_lo) * pct_per_v)). The first segment reaches down to -inf when
-- the curve starts at 0 % (a voltage below the curve reads 0 %), the last up to
-- +inf when it ends at 100 %. battery_readings converts each reading through it,
-- battery_day_pending each distinct voltage of a batch.
-- grain: one row per chemistry and pair of neighbouring curve points
-- columns: l_lo, l_hi (%), v_lo, v_hi (V), v_from, v_to (V, the range served), pct_per_v
create or replace view battery_curve_segments as
with segments as (
    select chemistry, level_pct as l_lo, voltage_v as v_lo,
           lead(level_pct) over w as l_hi, lead(voltage_v) over w as v_hi
    from battery_curve_points
    window w as (partition by chemistry order by level_pct)
),
final as (
    select chemistry, l_lo, l_hi, v_lo, v_hi,
           case when l_lo = 0 then '-inf'::double else v_lo end as v_from,
           case when l_hi = 100 then 'inf'::double else v_hi end as v_to,
           (l_hi - l_lo) / (v_hi - v_lo) as pct_per_v
    from segments
    where l_hi is not null
)
select * from final
