-- The open-circuit discharge curve of each cell curve (battery_curves, per cell, at
-- the temperature nearest 20 C among the curve's points) as segments between
-- neighbouring points, for converting a per-cell voltage to a level: a voltage v in
-- [v_from, v_to) reads as greatest(0, least(100, l_lo + (v - v_lo) * pct_per_v)).
-- The first segment reaches down to -inf when the curve starts at 0 % (a voltage
-- below the curve reads 0 %), the last up to +inf when it ends at 100 %.
-- battery_readings converts each reading through it, battery_day_pending each
-- distinct voltage of a batch (a device's pack voltage divided by its cells in series).
-- grain: one row per curve and pair of neighbouring curve points
-- columns: curve_id, l_lo, l_hi (%), v_lo, v_hi (V per cell), v_from, v_to (V per cell,
-- the range served), pct_per_v
create or replace view battery_curve_segments as
with ref_temperature as (
    select curve_id, arg_min(temperature_c, abs(temperature_c - 20.0)) as temperature_c
    from battery_curves
    group by curve_id
),
points as (
    select b.curve_id, b.level_pct, b.voltage_v / b.cells as voltage_v
    from battery_curves b
    join ref_temperature r using (curve_id, temperature_c)
),
segments as (
    select curve_id, level_pct as l_lo, voltage_v as v_lo,
           lead(level_pct) over w as l_hi, lead(voltage_v) over w as v_hi
    from points
    window w as (partition by curve_id order by level_pct)
),
final as (
    select curve_id, l_lo, l_hi, v_lo, v_hi,
           case when l_lo = 0 then '-inf'::double else v_lo end as v_from,
           case when l_hi = 100 then 'inf'::double else v_hi end as v_to,
           (l_hi - l_lo) / nullif(v_hi - v_lo, 0) as pct_per_v
    from segments
    where l_hi is not null and v_hi > v_lo
)
select * from final
