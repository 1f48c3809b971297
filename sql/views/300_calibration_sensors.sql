-- Sensors under calibration watch: every device with a primary measured
-- metric, its tolerance (calibration_tolerances, default 2% of scale) and its
-- calibration history.
-- grain: one row per device that measures a metric
-- columns: metric (canonical name), tolerance_pct and watch_pct (% of scale),
--          min_scale (metric unit), last_calibrated_at (UTC), n_calibrations
create or replace view calibration_sensors as
with measuring as (
    select
        device_id,
        measures as metric,
        device_type,
        site,
        zone,
        is_reference,
        reporting_interval_s
    from devices
    where measures is not null
),

calibrated as (
    select
        device_id,
        max(calibrated_at) as last_calibrated_at,
        count(*) as n_calibrations
    from calibrations
    group by device_id
),

final as (
    select
        m.*,
        coalesce(t.tolerance_pct, 2.0) as tolerance_pct,
        coalesce(t.watch_pct, coalesce(t.tolerance_pct, 2.0) / 2) as watch_pct,
        s.min_scale,
        c.last_calibrated_at,
        coalesce(c.n_calibrations, 0) as n_calibrations
    from measuring m
    left join calibration_tolerances t on t.device_type = m.device_type
    left join calibration_metric_scales s on s.metric = m.metric
    left join calibrated c on c.device_id = m.device_id
)

select * from final
