-- Power management: battery chemistries and their curves, criticality
-- thresholds per device type, and the result tables of the power analysis
-- (patterns, forecasts, backtest, drain attribution, replacement plan).
create table battery_chemistries (
    chemistry        varchar primary key,
    is_rechargeable  boolean not null,
    knee_pct         double not null,
    knee_gain        double not null,
    description      varchar not null
);
comment on table battery_chemistries is 'Grain: one row per battery chemistry. Below knee_pct (%) the reported level falls faster: dL/dC = -(1 + knee_gain * (knee_pct - L) / knee_pct) per % of charge used; knee_pct 0 means no knee.';

insert into battery_chemistries values
    ('li_socl2', false, 20.0, 3.0, 'Lithium thionyl chloride: flat voltage, then a knee near end of life.'),
    ('alkaline', false, 0.0,  0.0, 'Alkaline: voltage slopes down steadily with the charge used.'),
    ('li_ion',   true,  0.0,  0.0, 'Lithium-ion, rechargeable: charge cycles reset the level.'),
    ('lifepo4',  true,  0.0,  0.0, 'Lithium iron phosphate, rechargeable: very flat voltage.');

create table battery_curve_points (
    chemistry   varchar not null,
    level_pct   double not null,
    voltage_v   double not null,
    primary key (chemistry, level_pct)
);
comment on table battery_curve_points is 'Grain: one row per chemistry and level. Open-circuit voltage (V) at a state of charge (%); levels between points are interpolated linearly.';

insert into battery_curve_points
select c.chemistry, (i - 1) * 10.0, c.v[i]
from (values
    ('li_socl2', [2.90, 3.30, 3.45, 3.52, 3.56, 3.58, 3.60, 3.61, 3.62, 3.63, 3.66]),
    ('alkaline', [2.00, 2.20, 2.36, 2.48, 2.58, 2.66, 2.74, 2.82, 2.90, 3.00, 3.20]),
    ('li_ion',   [3.00, 3.45, 3.60, 3.68, 3.74, 3.79, 3.85, 3.92, 4.00, 4.08, 4.20]),
    ('lifepo4',  [2.50, 3.00, 3.15, 3.20, 3.23, 3.26, 3.28, 3.30, 3.32, 3.35, 3.60])
) c(chemistry, v), range(1, 12) r(i);

create table battery_thresholds (
    device_type      varchar primary key,
    low_pct          double not null,
    critical_pct     double not null,
    depleting_days   double not null
);
comment on table battery_thresholds is 'Grain: one row per device type, plus the default row ''*''. A battery is low below low_pct (%), critical below critical_pct (%), depleting when predicted to reach critical_pct within depleting_days (days).';

insert into battery_thresholds values
    ('*',             20.0, 10.0, 30.0),
    ('vibration',     25.0, 12.0, 30.0),
    ('gas',           25.0, 10.0, 14.0),
    ('pressure',      25.0, 12.0, 30.0);

create table battery_patterns (
    device_id        varchar primary key,
    pattern          varchar not null,
    segment_start_at timestamp,
    n_days           integer not null,
    rate_pct_per_day double,
    rate_recent_pct_per_day double,
    change_at        timestamp,
    change_ratio     double,
    temp_coef_per_c  double,
    temp_coef_t      double,
    knee_excess      double,
    residual_sd_pct  double,
    computed_at      timestamp not null,
    params           varchar not null
);
comment on table battery_patterns is 'Grain: one row per battery device. pattern: steady, accelerating, step_change, temperature_sensitive, charging, erratic or insufficient_data. Rates in % per day over the current battery segment (since the last reset); change_at is the detected step; temp_coef_per_c is the relative change of the rate per degree C (t statistic in temp_coef_t).';

create table battery_forecast (
    device_id           varchar primary key,
    as_of               timestamp,
    horizon_days        integer not null,
    level_now_pct       double,
    level_at_horizon_pct double,
    level_lo_pct        double,
    level_hi_pct        double,
    drop_pct            double,
    rate_pct_per_day    double,
    critical_pct        double,
    critical_at         timestamp,
    critical_lo_at      timestamp,
    critical_hi_at      timestamp,
    empty_at            timestamp,
    empty_lo_at         timestamp,
    empty_hi_at         timestamp,
    days_to_critical    double,
    days_to_empty       double,
    method              varchar not null,
    reason              varchar,
    pattern             varchar,
    alpha               double,
    beta                double,
    phi                 double,
    temp_coef_per_c     double,
    temp_factor         double,
    n_days              integer not null,
    computed_at         timestamp not null,
    params              varchar not null
);
comment on table battery_forecast is 'Grain: one row per battery device per forecast run. Levels in %, rate in % per day; *_lo/*_hi are the 90% interval (a later date is the hi end); method holt_winters or a fallback (type_prior, no_data) with its reason; alpha/beta/phi are the Holt-Winters smoothing and damping parameters.';

create table battery_backtest (
    device_id           varchar primary key,
    cut_at              timestamp not null,
    horizon_days        integer not null,
    actual_drop_pct     double,
    predicted_drop_pct  double,
    line14_drop_pct     double,
    mean_rate_drop_pct  double,
    error_pct_of_drop   double,
    line14_error_pct_of_drop double,
    mean_rate_error_pct_of_drop double,
    is_scored           boolean not null,
    method              varchar,
    pattern             varchar,
    computed_at         timestamp not null,
    params              varchar not null
);
comment on table battery_backtest is 'Grain: one row per battery device per backtest run. History cut horizon_days before its end; drops in % of level over the horizon; errors are |predicted - actual| / actual in %. is_scored is false where the window holds a reset (charge, replacement) or too little data.';

create table drain_attribution (
    factor          varchar not null,
    level           varchar not null,
    effect_pct      double,
    ci_lo_pct       double,
    ci_hi_pct       double,
    p_value         double,
    n_devices       integer not null,
    computed_at     timestamp not null,
    params          varchar not null
);
comment on table drain_attribution is 'Grain: one row per factor level (per factor for numeric factors). effect_pct is the % change of the discharge rate against the reference level (per unit for numeric factors: per C, per halving of the interval, per 10 dB), with a 95% confidence interval from an OLS fit of log rate (statsmodels).';

create table replacement_plan (
    visit_id        integer not null,
    visit_at        timestamp not null,
    site            varchar not null,
    device_id       varchar not null,
    zone            varchar,
    device_type     varchar,
    criticality     integer,
    rank            integer not null,
    level_now_pct   double,
    critical_at     timestamp,
    empty_at        timestamp,
    days_left       double,
    pattern         varchar,
    method          varchar,
    reason          varchar not null,
    computed_at     timestamp not null,
    params          varchar not null
);
comment on table replacement_plan is 'Grain: one row per device to replace within the planning window. visit_id groups the devices of one site visit; visit_at is the visit date (never after any of its devices'' predicted critical date); rank orders devices by urgency and importance.';
