-- Rank (Spearman) correlation between each environmental factor a device is
-- exposed to and each of its outcomes, over devices with environment data:
-- the Pearson correlation of average ranks (ties share their mean rank).
-- Marginal associations: not adjusted for device type, age or the other
-- factors (environment_effects holds the adjusted GLM effects).
-- grain: one row per factor and outcome
-- columns: factor (mean_temperature_c | mean_humidity_pct | mean_vibration_g |
--   mean_daily_swing_c), outcome (a column of environment_device_outcomes),
--   n_devices, spearman_rho (-1..1)
create or replace view environment_rank_correlations as
with joined as (
    select x.*, o.* exclude (device_id)
    from environment_device_exposure as x
    join environment_device_outcomes as o using (device_id)
    where x.env_source <> 'none'
),

factors as (
    unpivot (select device_id, mean_temperature_c, mean_humidity_pct, mean_vibration_g,
                    mean_daily_swing_c from joined)
    on mean_temperature_c, mean_humidity_pct, mean_vibration_g, mean_daily_swing_c
    into name factor value x
),

outcomes as (
    unpivot (select device_id, failures_per_year, reboots_per_year,
                    battery_discharge_pct_per_day, packet_loss_pct, mean_rssi_dbm,
                    calibration_drift_pct_per_day from joined)
    on failures_per_year, reboots_per_year, battery_discharge_pct_per_day, packet_loss_pct,
       mean_rssi_dbm, calibration_drift_pct_per_day
    into name outcome value y
),

-- ranked at 6 significant digits: a device's value comes from sums that DuckDB's threads
-- add in a varying order (a discharge slope moves by up to 1e-11 from run to run), and two
-- devices whose values are equal in exact arithmetic would swap ranks at random, moving
-- rho by ~1e-4; rounded, they tie
pairs as (
    select
        f.factor, o.outcome,
        case when f.x = 0 then 0.0
             else round(f.x, 5 - cast(floor(log10(abs(f.x))) as integer)) end as x,
        case when o.y = 0 then 0.0
             else round(o.y, 5 - cast(floor(log10(abs(o.y))) as integer)) end as y
    from factors as f
    join outcomes as o using (device_id)
    where f.x is not null and o.y is not null and isfinite(f.x) and isfinite(o.y)
),

ranked as (
    select
        factor, outcome,
        rank() over (partition by factor, outcome order by x)
            + (count(*) over (partition by factor, outcome, x) - 1) / 2.0 as rx,
        rank() over (partition by factor, outcome order by y)
            + (count(*) over (partition by factor, outcome, y) - 1) / 2.0 as ry
    from pairs
),

final as (
    select factor, outcome, count(*) as n_devices, corr(rx, ry) as spearman_rho
    from ranked
    group by factor, outcome
)

select * from final
