-- Battery level per device and reading, normalized to percent: battery_pct as
-- reported, or battery_voltage_v divided by the device's cells in series and
-- converted through its cell curve (battery_curve_segments: linear between the
-- points of battery_curves; curve battery_curve, else the chemistry's; cells
-- battery_cells, else the chemistry's, else 1) for devices that report only a voltage.
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
volts as (
    select r.device_id, r.observed_at, r.value as voltage_v,
           coalesce(d.battery_curve, d.battery_chemistry) as curve_id,
           r.value / coalesce(d.battery_cells, c.cells, 1) as cell_v
    from readings r
    join devices d using (device_id)
    left join battery_chemistries c on c.chemistry = d.battery_chemistry
    where r.metric = 'battery_voltage_v'
      and r.device_id not in (select device_id from pct_devices)
),
converted as (
    select v.device_id, v.observed_at,
           greatest(0.0, least(100.0, s.l_lo + (v.cell_v - s.v_lo) * s.pct_per_v))
               as level_pct,
           v.voltage_v, 'battery_voltage_v' as source_metric
    from volts v
    join battery_curve_segments s
      on s.curve_id = v.curve_id
     and v.cell_v >= s.v_from and v.cell_v < s.v_to
),
final as (
    select * from pct
    union all
    select * from converted
)
select * from final
