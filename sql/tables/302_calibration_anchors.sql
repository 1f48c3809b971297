-- Calibration (issue 17): declared metrics carry their drift tolerance and
-- scale; a passed calibration check makes a sensor a trusted anchor for a
-- while; drift results say their level (watch / recalibrate) and confidence.
create table metric_declarations (
    metric               varchar primary key,
    unit                 varchar not null,
    quantity             varchar,
    min_value            double not null,
    max_value            double not null,
    description          varchar,
    drift_tolerance_pct  double,
    min_scale            double,
    batch_id             bigint
);
comment on table metric_declarations is 'Grain: one row per metric declared by a user (ingest kind "metrics" or fleet.metrics.add()); each declaration is copied into metric_catalog (name, unit, physical range min_value..max_value) and readings quarantined as unknown_metric are re-ingested. drift_tolerance_pct: default recalibration tolerance (% of scale) of sensors of the metric (calibration_tolerances per device type wins; else 2); min_scale: the smallest scale drift percentages refer to, in the metric''s unit (calibration_metric_scales wins).';

alter table calibration_tolerances add column check_valid_days double;
comment on table calibration_tolerances is 'Grain: one row per device type with a non-default tolerance. tolerance_pct: drift (% of scale) at which a sensor needs recalibration (default: the metric''s drift_tolerance_pct, else 2); watch_pct: drift worth reporting (default half the tolerance); check_valid_days: how long a passed calibration check makes the sensor a trusted anchor of its zone (default 14 days).';

alter table sensor_drift add column level varchar;
alter table sensor_drift add column confidence varchar;
alter table sensor_drift add column n_voters integer;
comment on table sensor_drift is 'Grain: one row per sensor (device and its primary metric). Drift since the last calibration: drift_pct (% of scale, latest level minus baseline), offset_pct (latest level vs expectation), drift_rate_pct_per_day (recent slope), trend_t/trend_p (OLS with Newey-West errors), step_stat/step_p (CUSUM), p_value (sensor, Bonferroni of both), q_value (Benjamini-Hochberg across the fleet). verdict: ok, watch, drifting, step, needs_recalibration, fault, no_expectation, zone_ambiguous. level: the action level the drift reached: recalibrate (|drift| >= tolerance, default 2%), watch (>= watch level, default 1%), else null. confidence: high (a trusted anchor or 3+ consensus peers), medium (2 peers), low (1 peer), null (not judged). n_voters: consensus members of the zone and metric at the last hour. Times UTC.';
