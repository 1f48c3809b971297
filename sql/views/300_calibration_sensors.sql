-- Sensors under calibration watch: every device with a primary measured
-- metric, its tolerance (calibration_tolerances per device type, else the
-- metric's declared drift_tolerance_pct, else 2% of scale) and its
-- calibration history.
-- A sensor is a trusted anchor of its zone while it is a reference instrument
-- (is_reference) whose latest calibration check, if any, passed (is_anchor: a
-- failed check is what doubts a reference), or, in a zone with at most 3 sensors of its metric (where no
-- consensus of 3 peers exists), for check_valid_days (default 14) after a
-- calibration record that passed (no correction needed: |error| below the
-- watch level) or corrected it. In larger zones the consensus of the peers is
-- the better evidence, and switching between one sensor and the consensus
-- would show as a step in the peers' residuals.
-- grain: one row per device that measures a metric
-- columns: metric (canonical name), tolerance_pct and watch_pct (% of scale),
--          min_scale (metric unit), last_calibrated_at (UTC), n_calibrations,
--          trusted_from_at / trusted_until_at (UTC: the hours after the last
--          passed check during which it anchors its zone; null: none),
--          is_metric_declared (measures is in metric_catalog), is_anchor,
--          is_check_failed (its latest check found it off and corrected nothing:
--          it does not vote in its zone's consensus)
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
        count(*) as n_calibrations,
        arg_max(reference_value, calibrated_at) as reference_value,
        arg_max(measured_value, calibrated_at) as measured_value,
        arg_max(offset_applied <> 0 or gain_applied <> 1, calibrated_at) as is_adjustment
    from calibrations
    group by device_id
),

settings as (
    select
        m.*,
        coalesce(t.tolerance_pct, k.drift_tolerance_pct, 2.0) as tolerance_pct,
        coalesce(t.watch_pct, coalesce(t.tolerance_pct, k.drift_tolerance_pct, 2.0) / 2)
            as watch_pct,
        coalesce(t.check_valid_days, 14.0) as check_valid_days,
        coalesce(s.min_scale, k.min_scale) as min_scale,
        m.metric in (select metric from metric_catalog) as is_metric_declared
    from measuring m
    left join calibration_tolerances t on t.device_type = m.device_type
    left join calibration_metric_scales s on s.metric = m.metric
    left join metric_declarations k on k.metric = m.metric
),

checked as (
    select
        m.*,
        c.last_calibrated_at,
        coalesce(c.n_calibrations, 0) as n_calibrations,
        c.is_adjustment
            or abs(c.measured_value - c.reference_value)
                < m.watch_pct / 100 * greatest(abs(c.reference_value), coalesce(m.min_scale, 0))
            as is_check_passed,
        count(*) over (partition by m.zone, m.metric) as n_group
    from settings m
    left join calibrated c on c.device_id = m.device_id
),

final as (
    select
        * exclude (is_check_passed, check_valid_days, n_group),
        is_reference and coalesce(is_check_passed, true) as is_anchor,
        coalesce(not is_check_passed, false) as is_check_failed,
        case when is_check_passed and n_group <= 3 then last_calibrated_at end
            as trusted_from_at,
        case when is_check_passed and n_group <= 3
            then last_calibrated_at + to_microseconds(cast(check_valid_days * 86400e6 as bigint))
        end as trusted_until_at
    from checked
)

select * from final
