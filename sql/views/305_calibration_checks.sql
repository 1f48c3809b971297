-- The calibration registry: every calibration or reference check of a
-- sensor, with the error it found in percent of scale (reference value, at
-- least the metric's min_scale) and whether it applied a correction.
-- grain: one row per calibration record
-- columns: reference_value, measured_value, offset_applied (metric unit);
--          gain_applied (ratio); error_pct (% of scale); is_adjustment;
--          is_latest (the newest record of the sensor); n_before (earlier records)
create or replace view calibration_checks as
with records as (
    select
        c.device_id,
        s.metric,
        s.site,
        s.zone,
        c.calibrated_at,
        c.reference_value,
        c.measured_value,
        c.offset_applied,
        c.gain_applied,
        c.performed_by,
        greatest(abs(c.reference_value), coalesce(s.min_scale, 0)) as scale
    from calibrations c
    join calibration_sensors s on s.device_id = c.device_id
),

final as (
    select
        device_id,
        metric,
        site,
        zone,
        calibrated_at,
        reference_value,
        measured_value,
        offset_applied,
        gain_applied,
        performed_by,
        case when scale > 0
            then 100 * (measured_value - reference_value) / scale end as error_pct,
        (offset_applied <> 0 or gain_applied <> 1) as is_adjustment,
        row_number() over (partition by device_id order by calibrated_at desc) = 1 as is_latest,
        row_number() over (partition by device_id order by calibrated_at) - 1 as n_before
    from records
)

select * from final
