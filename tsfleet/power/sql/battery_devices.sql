-- The battery devices the forecast reads: a battery_chemistry other than mains, or
-- any device with battery_pct or battery_voltage_v readings (with or without a
-- chemistry: every one gets a battery_forecast row), with what reads its level.
-- parameters: $devices (varchar[] or null: all)
-- grain: one row per battery device
-- columns: device_id, device_type, chemistry, zone, is_rechargeable, knee_nominal (%),
-- gain, voltage_only (no battery_pct report, a battery_voltage_v one), curve_id (null:
-- none named), cells (in series)
with metrics as (
    select device_id,
           bool_or(metric = 'battery_pct') as has_pct,
           bool_or(metric = 'battery_voltage_v') as has_voltage
    from device_latest
    where metric in ('battery_pct', 'battery_voltage_v')
    group by device_id
),
final as (
    select d.device_id, d.device_type, d.battery_chemistry as chemistry, d.zone,
           coalesce(c.is_rechargeable, false) as is_rechargeable,
           coalesce(c.knee_pct, 0) as knee_nominal, coalesce(c.knee_gain, 0) as gain,
           coalesce(not m.has_pct and m.has_voltage, false) as voltage_only,
           coalesce(d.battery_curve, d.battery_chemistry) as curve_id,
           coalesce(d.battery_cells, c.cells, 1) as cells
    from devices d
    left join battery_chemistries c on c.chemistry = d.battery_chemistry
    left join metrics m using (device_id)
    where ((d.battery_chemistry is not null and d.battery_chemistry <> 'mains')
           or m.device_id is not null)
      and ($devices::varchar[] is null or d.device_id in (select unnest($devices::varchar[])))
)
select * from final order by device_id
