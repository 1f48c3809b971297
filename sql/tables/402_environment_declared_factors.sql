-- Environment (issue 18): any declared metric can be an environmental factor. A
-- metric declared with is_environmental = true (ingest kind "metrics" or
-- fleet.metrics.add(..., is_environmental=True)) is read from the environment
-- monitors like temperature, humidity and vibration, and gets the same model
-- (linear + data-found threshold, per device type, Holm), envelopes, limits and
-- recommendations. Its zone values per hour are kept in long form.
alter table metric_declarations add column is_environmental boolean;
comment on table metric_declarations is 'Grain: one row per metric declared by a user (ingest kind "metrics" or fleet.metrics.add()); each declaration is copied into metric_catalog (name, unit, physical range min_value..max_value) and readings quarantined as unknown_metric are re-ingested. drift_tolerance_pct: default recalibration tolerance (% of scale) of sensors of the metric (calibration_tolerances per device type wins; else 2); min_scale: the smallest scale drift percentages refer to, in the metric''s unit (calibration_metric_scales wins). is_environmental: the metric is an environmental factor, measured by the environment monitors and analysed by fleet.environment like temperature (NULL or false: not).';

create table environment_zone_factor_hourly (
    zone               varchar not null,
    hour_at            timestamp not null,
    factor             varchar not null,
    value              double,
    is_interpolated    boolean not null,
    computed_at        timestamp not null,
    params             varchar not null
);
comment on table environment_zone_factor_hourly is 'Grain: one row per zone, declared environmental factor (metric_declarations.is_environmental) and UTC hour of the analysis window. value: mean of the valid environment-monitor readings of that hour, in the metric''s unit (metric_catalog.unit); hours inside a gap no longer than the interpolation limit are linearly interpolated (is_interpolated), longer gaps stay NULL. The built-in factors are in environment_zone_hourly.';
