-- Battery level per device and reading, normalized to percent: battery_pct as
-- reported, or battery_voltage_v converted through the chemistry's open-circuit
-- curve (battery_curve_points, linear between points) for devices that report
-- only a voltage.
-- grain: one row per device and battery reading (observed_at, UTC)
-- columns: level_pct (%), voltage_v (V, null for percent reports), source_metric
create or replace view battery_readings as
with pct_devices as (
    select device_id from device_latest where metric = 'battery_pct'
),
pct as (
    select device_id, observed_at, value as level_pct, null::double as voltage_v,
           'battery_pct' as source_metric
    from readings
    where metric = 'battery_pct'
),
segments as (
    select chemistry, level_pct as l_lo, voltage_v as v_lo,
           lead(level_pct) over w as l_hi, lead(voltage_v) over w as v_hi,
           min(voltage_v) over (partition by chemistry) as v_min,
           max(voltage_v) over (partition by chemistry) as v_max
    from battery_curve_points
    window w as (partition by chemistry order by level_pct)
),
volts as (
    select r.device_id, r.observed_at, r.value as voltage_v, d.battery_chemistry
    from readings r
    join devices d using (device_id)
    where r.metric = 'battery_voltage_v'
      and r.device_id not in (select device_id from pct_devices)
),
converted as (
    select v.device_id, v.observed_at,
           case when v.voltage_v <= s.v_min then 0.0
                when v.voltage_v >= s.v_max then 100.0
                else s.l_lo + (v.voltage_v - s.v_lo) / (s.v_hi - s.v_lo) * (s.l_hi - s.l_lo)
           end as level_pct,
           v.voltage_v, 'battery_voltage_v' as source_metric
    from volts v
    join segments s
      on s.chemistry = v.battery_chemistry and s.l_hi is not null
     and ((v.voltage_v >= s.v_lo and v.voltage_v < s.v_hi)
          or (v.voltage_v < s.v_min and s.l_lo = 0)
          or (v.voltage_v >= s.v_max and s.l_hi = 100))
),
final as (
    select * from pct
    union all
    select * from converted
)
select * from final
