-- Environment analysis results: zone environment per hour, monitor faults,
-- gaps, device exposure and stress, fitted effects, operating envelopes and
-- recommendations. Written by fleet.environment.analyze(); every table
-- carries computed_at (UTC) and params (JSON of the arguments used).
create table environment_zone_hourly (
    zone               varchar not null,
    hour_at            timestamp not null,
    temperature_c      double,
    humidity_pct       double,
    vibration_g        double,
    daily_swing_c      double,
    n_monitors         integer not null,
    is_interpolated    boolean not null,
    computed_at        timestamp not null,
    params             varchar not null
);
comment on table environment_zone_hourly is 'Grain: one row per zone and UTC hour of the analysis window. Mean of the valid environment-monitor readings of that hour (degC, %RH, g RMS); hours inside a gap no longer than the interpolation limit are linearly interpolated (is_interpolated), longer gaps stay NULL. daily_swing_c: max - min temperature of the calendar day, degC.';

create table environment_monitor_faults (
    device_id     varchar not null,
    zone          varchar not null,
    metric        varchar,
    fault         varchar not null,
    from_at       timestamp,
    to_at         timestamp,
    n_readings    bigint not null,
    computed_at   timestamp not null,
    params        varchar not null
);
comment on table environment_monitor_faults is 'Grain: one row per environment monitor, metric and fault episode. fault: stuck (same value for many readings), out_of_range (physically implausible), dead (silent since from_at; metric NULL). Their readings are excluded from the zone environment.';

create table environment_gaps (
    zone          varchar not null,
    metric        varchar not null,
    gap_from      timestamp not null,
    gap_to        timestamp not null,
    hours         integer not null,
    is_filled     boolean not null,
    computed_at   timestamp not null,
    params        varchar not null
);
comment on table environment_gaps is 'Grain: one row per zone, metric and run of hours without valid monitor data [gap_from, gap_to). is_filled: the gap was interpolated (hours <= the limit); otherwise it stays a gap.';

create table environment_device_exposure (
    device_id                  varchar not null,
    device_type                varchar not null,
    site                       varchar not null,
    zone                       varchar not null,
    age_years                  double,
    env_source                 varchar not null,
    hours_with_environment     integer not null,
    share_hours_interpolated   double,
    mean_temperature_c         double,
    max_temperature_c          double,
    mean_humidity_pct          double,
    mean_vibration_g           double,
    mean_daily_swing_c         double,
    share_hours_outside_envelope double,
    thermal_cycles_per_30d     double,
    arrhenius_acceleration     double,
    vibration_dose_g2h_per_day double,
    stress_index               double,
    failures_per_30d_expected  double,
    p_fail_30d                 double,
    p_fail_threshold           double,
    maintenance_rank           integer,
    computed_at                timestamp not null,
    params                     varchar not null
);
comment on table environment_device_exposure is 'Grain: one row per device (environment monitors excluded). env_source: zone_monitors or none (no environment data). Exposure over the analysis window from the zone environment: means in degC, %RH, g RMS; thermal cycles = days with a swing >= 8 degC per 30 days; arrhenius_acceleration = mean exp(Ea/k (1/298.15 - 1/T)), Ea 0.7 eV; vibration dose g^2*h per day. stress_index 0..100 = mean fleet percentile of the four. p_fail_30d: probability of at least one failure in the next 30 days from the fitted model, given the last 30 days of environment; p_fail_threshold is the level that makes it a finding. maintenance_rank 1 = most urgent.';

create table environment_effects (
    method        varchar not null,
    outcome       varchar not null,
    factor        varchar not null,
    device_type   varchar,
    estimate      double,
    ci_low        double,
    ci_high       double,
    rate_ratio    double,
    p_value       double,
    p_adjusted    double,
    is_significant boolean,
    n             bigint,
    unit          varchar,
    note          varchar,
    computed_at   timestamp not null,
    params        varchar not null
);
comment on table environment_effects is 'Grain: one row per method, outcome, factor (and device type for per-type terms). method glm_poisson: estimate is the log rate ratio per unit (unit column) with a 95% Wald CI, rate_ratio = exp(estimate), adjusted for device type and age; method spearman: estimate is the rank correlation over devices with a Fisher-z 95% CI. p_adjusted: Holm correction within each method over all factors and outcomes tested.';

create table environment_envelopes (
    device_type      varchar not null,
    factor           varchar not null,
    band_low         double,
    band_high        double,
    device_hours     double not null,
    n_failures       bigint not null,
    failures_per_year double,
    ci_low           double,
    ci_high          double,
    rate_ratio       double,
    p_value          double,
    p_adjusted       double,
    status           varchar not null,
    computed_at      timestamp not null,
    params           varchar not null
);
comment on table environment_envelopes is 'Grain: one row per device type, factor and band [band_low, band_high) of that factor. failures_per_year per device with an exact Poisson 95% CI; rate_ratio against the rest of the type; device_type all pools every type. status optimal | normal | problematic | insufficient_data (problematic: significantly higher, Benjamini-Hochberg adjusted p < 0.05).';

create table environment_recommendations (
    rank                        integer not null,
    zone                        varchar not null,
    site                        varchar not null,
    factor                      varchar not null,
    condition                   varchar not null,
    share_hours                 double,
    n_devices                   integer not null,
    n_failures                  bigint not null,
    rate_ratio                  double,
    ci_low                      double,
    ci_high                     double,
    avoidable_failures_per_year double,
    action                      varchar not null,
    sentence                    varchar not null,
    computed_at                 timestamp not null,
    params                      varchar not null
);
comment on table environment_recommendations is 'Grain: one row per problem zone, ranked by avoidable failures a year. rate_ratio: observed failure rate of the zone over the fleet rate expected for its devices (type and age), exact 95% CI; avoidable_failures_per_year from the fitted model with the significant factors brought to fleet-typical levels.';

create table environment_model (
    outcome       varchar not null,
    term          varchar not null,
    coefficient   double not null,
    threshold_c   double,
    computed_at   timestamp not null,
    params        varchar not null
);
comment on table environment_model is 'Grain: one row per outcome and model term of the fitted Poisson GLM (log rate per device-hour). threshold_c is the profiled temperature threshold of the temperature_excess_c term.';
