-- Daily battery level of the keys in power_refresh_keys, as the next refresh
-- writes it into battery_day_stats: battery_pct as reported, or battery_voltage_v
-- through the chemistry's open-circuit curve (battery_curve_points) for devices
-- that report only a voltage; mean weighted by readings, medians of the hours
-- before and after noon.
-- grain: one row per battery device and UTC day to recompute
-- columns: level_pct, first_level_pct, last_level_pct (%), n_readings,
-- mean_observed_at, last_observed_at (UTC)
create or replace view battery_day_pending as
with src as (
    select * from power_refresh_source where metric <> 'temperature_c'
),
pct_devices as (
    select device_id from device_latest where metric = 'battery_pct'
),
segments as (
    select chemistry, level_pct as l_lo, voltage_v as v_lo,
           lead(level_pct) over w as l_hi, lead(voltage_v) over w as v_hi,
           min(voltage_v) over (partition by chemistry) as v_min,
           max(voltage_v) over (partition by chemistry) as v_max
    from battery_curve_points
    window w as (partition by chemistry order by level_pct)
),
pct as (
    select device_id, observed_at, value as level_pct, weight
    from src where metric = 'battery_pct'
),
volts as (
    select s.device_id, s.observed_at, s.value as voltage_v, s.weight, d.battery_chemistry
    from src s
    join devices d using (device_id)
    anti join pct_devices p using (device_id)
    where s.metric = 'battery_voltage_v'
),
converted as (
    select v.device_id, v.observed_at,
           case when v.voltage_v <= s.v_min then 0.0
                when v.voltage_v >= s.v_max then 100.0
                else s.l_lo + (v.voltage_v - s.v_lo) / (s.v_hi - s.v_lo) * (s.l_hi - s.l_lo)
           end as level_pct,
           v.weight
    from volts v
    join segments s
      on s.chemistry = v.battery_chemistry and s.l_hi is not null
     and ((v.voltage_v >= s.v_lo and v.voltage_v < s.v_hi)
          or (v.voltage_v < s.v_min and s.l_lo = 0)
          or (v.voltage_v >= s.v_max and s.l_hi = 100))
),
levels as (
    select * from pct
    union all
    select * from converted
),
final as (
    select device_id, observed_at::date as day,
           sum(level_pct * weight) / sum(weight) as level_pct,
           median(level_pct) filter (where hour(observed_at) < 12) as first_level_pct,
           median(level_pct) filter (where hour(observed_at) >= 12) as last_level_pct,
           sum(weight) as n_readings,
           to_timestamp(sum(epoch(observed_at) * weight) / sum(weight))::timestamp
               as mean_observed_at,
           max(observed_at) as last_observed_at
    from levels
    group by all
)
select * from final
