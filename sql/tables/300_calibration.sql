-- Calibration: settings (tolerance per device type, the scale percentages
-- refer to) and the result tables written by tsfleet.calibration.
create table calibration_tolerances (
    device_type    varchar primary key,
    tolerance_pct  double not null,
    watch_pct      double
);
comment on table calibration_tolerances is 'Grain: one row per device type with a non-default tolerance. tolerance_pct: drift (% of scale) at which a sensor needs recalibration (default 2); watch_pct: drift worth reporting (default half the tolerance).';

create table calibration_metric_scales (
    metric     varchar primary key,
    min_scale  double not null
);
comment on table calibration_metric_scales is 'Grain: one row per measured metric. Drift percentages refer to the mean absolute expected value of the zone and metric, at least min_scale (in the metric''s unit), so that a reading near zero does not inflate them.';

insert into calibration_metric_scales values
    ('temperature_c', 20.0), ('humidity_pct', 20.0), ('vibration_g', 0.05),
    ('pressure_kpa', 50.0), ('co2_ppm', 200.0);

create table sensor_drift (
    device_id              varchar primary key,
    metric                 varchar not null,
    device_type            varchar,
    site                   varchar,
    zone                   varchar,
    expected_source        varchar,
    segment_start_at       timestamp,
    last_calibrated_at     timestamp,
    n_hours                integer not null,
    drift_pct              double,
    offset_pct             double,
    drift_rate_pct_per_day double,
    trend_t                double,
    trend_p                double,
    step_stat              double,
    step_p                 double,
    step_at                timestamp,
    step_pct               double,
    p_value                double,
    q_value                double,
    method                 varchar not null,
    verdict                varchar not null,
    reason                 varchar,
    first_detectable_at    timestamp,
    tolerance_pct          double not null,
    crosses_tolerance_at   timestamp,
    as_of                  timestamp,
    computed_at            timestamp not null,
    params                 varchar not null
);
comment on table sensor_drift is 'Grain: one row per sensor (device and its primary metric). Drift since the last calibration: drift_pct (% of scale, latest level minus baseline), offset_pct (latest level vs expectation), drift_rate_pct_per_day (recent slope), trend_t/trend_p (OLS with Newey-West errors), step_stat/step_p (CUSUM), p_value (sensor, Bonferroni of both), q_value (Benjamini-Hochberg across the fleet). verdict: ok, watch, drifting, step, needs_recalibration, fault, no_expectation. Times UTC.';

create table calibration_peer_exclusions (
    device_id    varchar primary key,
    verdict      varchar not null,
    computed_at  timestamp not null,
    params       varchar not null
);
comment on table calibration_peer_exclusions is 'Grain: one row per sensor left out of its peers'' consensus because the first pass of detect() found it drifting, stepped or faulty (so that drifting neighbours do not drag the median).';

create table sensor_residuals (
    device_id        varchar not null,
    metric           varchar not null,
    site             varchar,
    zone             varchar,
    hour_at          timestamp not null,
    value            double not null,
    expected         double not null,
    expected_source  varchar not null,
    n_peers          integer,
    scale            double not null,
    residual_pct     double not null,
    computed_at      timestamp not null,
    params           varchar not null
);
comment on table sensor_residuals is 'Grain: one row per sensor and UTC hour of its current calibration period with an expectation, as of the last detect(). value, expected and scale in the metric''s unit; residual_pct = 100 * (value - expected) / scale.';

create table sensor_faults (
    device_id            varchar not null,
    metric               varchar not null,
    site                 varchar,
    zone                 varchar,
    fault                varchar not null,
    since_at             timestamp,
    value                double,
    detail               varchar not null,
    as_of                timestamp,
    computed_at          timestamp not null,
    params               varchar not null
);
comment on table sensor_faults is 'Grain: one row per sensor and fault kind (stuck, dead, spikes, out_of_range). value: run length in readings (stuck), hours silent (dead), number of spikes or rejected readings. Times UTC.';

create table sensor_outliers (
    device_id     varchar not null,
    metric        varchar not null,
    hour_at       timestamp not null,
    value         double not null,
    expected      double,
    residual_pct  double not null,
    robust_z      double not null,
    computed_at   timestamp not null,
    params        varchar not null
);
comment on table sensor_outliers is 'Grain: one row per sensor-hour whose residual against its expectation jumps away from both neighbouring hours (robust z above the threshold). value and expected in the metric''s unit; residual_pct in % of scale.';

create table calibration_schedule (
    visit_id         varchar not null,
    site             varchar not null,
    visit_at         timestamp not null,
    device_id        varchar primary key,
    zone             varchar,
    metric           varchar,
    rank             integer not null,
    due_at           timestamp not null,
    drift_pct        double,
    drift_rate_pct_per_day double,
    verdict          varchar,
    computed_at      timestamp not null,
    params           varchar not null
);
comment on table calibration_schedule is 'Grain: one row per sensor to recalibrate, batched into site visits. due_at: when its drift crosses tolerance (UTC); visit_at: the visit that covers it (the earliest due date of its batch); rank: order by due_at across the fleet.';

create table calibration_stability (
    factor          varchar primary key,
    unit            varchar not null,
    n_sensors       integer not null,
    coef            double,
    coef_per_sd     double,
    std_error       double,
    p_value         double,
    partial_r       double,
    summary         varchar,
    computed_at     timestamp not null,
    params          varchar not null
);
comment on table calibration_stability is 'Grain: one row per exposure factor (temperature_c, humidity_pct, vibration_g). OLS of each sensor''s absolute drift rate (% per day) on its zone''s mean exposure: coef per unit, coef_per_sd per standard deviation of exposure, HC3 standard error, p-value and partial correlation (effect size).';
