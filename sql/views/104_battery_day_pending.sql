-- internal: a step of tsfleet.power.daystats.refresh (reads power_refresh_rows)
-- Daily battery sums of the rows in power_refresh_rows, as the next refresh
-- folds them into battery_day_stats: battery_pct as reported, or battery_voltage_v
-- divided by the device's cells in series, through its cell curve (battery_curves,
-- see battery_readings) for devices that report only a voltage; sums weighted by readings, in total and for the
-- hours before (am) and after (pm) noon. Each distinct voltage is converted once
-- (a range join over battery_curve_segments), then joined back by equality: the
-- range join per reading was most of the time of a rebuild.
-- grain: one row per battery device and UTC day with rows to fold in
-- columns: n_readings, level_sum (% x readings), epoch_sum (epoch seconds x readings),
-- last_observed_at (UTC), am_n, am_level_sum, pm_n, pm_level_sum
create or replace view battery_day_pending as
with src as not materialized (
    select * from power_refresh_rows where metric <> 'temperature_c'
),
pct_devices as (
    select device_id from device_latest where metric = 'battery_pct'
),
device_curves as (
    -- each device's cell curve and cells in series (see battery_readings)
    select d.device_id, coalesce(d.battery_curve, d.battery_chemistry) as curve_id,
           coalesce(d.battery_cells, c.cells, 1) as cells
    from devices d
    left join battery_chemistries c on c.chemistry = d.battery_chemistry
),
volts as not materialized (
    select s.device_id, s.observed_at, s.value as voltage_v, s.weight, c.curve_id, c.cells
    from src s
    join device_curves c using (device_id)
    anti join pct_devices p using (device_id)
    where s.metric = 'battery_voltage_v'
),
voltage_values as (
    -- each distinct voltage of each curve and cell count (a superset of the converted ones)
    select distinct c.curve_id, c.cells, s.value as voltage_v
    from src s
    join device_curves c using (device_id)
    where s.metric = 'battery_voltage_v'
),
curve as (
    select v.curve_id, v.cells, v.voltage_v,
           greatest(0.0, least(100.0, s.l_lo + (v.voltage_v / v.cells - s.v_lo) * s.pct_per_v))
               as level_pct
    from voltage_values v
    join battery_curve_segments s
      on s.curve_id = v.curve_id
     and v.voltage_v / v.cells >= s.v_from and v.voltage_v / v.cells < s.v_to
),
levels as (
    select device_id, observed_at, value as level_pct, weight
    from src where metric = 'battery_pct'
    union all
    select v.device_id, v.observed_at, c.level_pct, v.weight
    from volts v join curve c using (curve_id, cells, voltage_v)
),
sums as (
    select device_id, observed_at::date as day,
           sum(weight) as n_readings,
           sum(level_pct * weight) as level_sum,
           sum(epoch(observed_at) * weight) as epoch_sum,
           max(observed_at) as last_observed_at,
           sum(weight) filter (where hour(observed_at) < 12) as am_n,
           sum(level_pct * weight) filter (where hour(observed_at) < 12) as am_level_sum
    from levels
    group by all
),
final as (
    select device_id, day, n_readings, level_sum, epoch_sum, last_observed_at,
           coalesce(am_n, 0) as am_n, coalesce(am_level_sum, 0) as am_level_sum,
           n_readings - coalesce(am_n, 0) as pm_n,
           level_sum - coalesce(am_level_sum, 0) as pm_level_sum
    from sums
)
select * from final
