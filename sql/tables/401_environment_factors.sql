-- Environment analysis, every factor in one form (issue #18): the effects and
-- the model carry each factor's term (linear | above) and its threshold found
-- from the data with a profile-likelihood 95% interval; the operating limits
-- that follow from the fitted thresholds; how environment monitors are declared.
alter table environment_effects add column term varchar;
alter table environment_effects add column threshold double;
alter table environment_effects add column threshold_ci_low double;
alter table environment_effects add column threshold_ci_high double;
comment on table environment_effects is 'Grain: one row per method, outcome, factor, device type (NULL: pooled over types) and term. method glm_poisson: every factor has a linear term (estimate = log rate ratio per unit over the whole range, centred on the fleet median) and an above-threshold term (extra log rate ratio per unit above threshold, in the factor''s unit, found from the data; threshold_ci_low/high its profile-likelihood 95% interval); 95% Wald CI; rate_ratio = exp(estimate); adjusted for device type and age. device_type NULL: one model over all types (type intercepts, shared slopes); a type: that type''s own model (the interaction), fitted where it has enough failures. p_value: the factor''s joint likelihood-ratio test (both terms, threshold searched: 3 df); p_adjusted: Holm over all outcomes x factors x device types; is_significant: p_adjusted < 0.05 and the row''s CI excludes 0. The slope CIs are the union of the Wald CIs over the thresholds inside the threshold''s interval (the threshold''s own uncertainty included). method spearman: the rank correlation over devices with a Fisher-z 95% CI, Holm within its family.';

alter table environment_model add column factor varchar;
alter table environment_model add column device_type varchar;
alter table environment_model add column std_error double;
alter table environment_model add column center double;
alter table environment_model add column threshold double;
alter table environment_model add column threshold_ci_low double;
alter table environment_model add column threshold_ci_high double;
comment on table environment_model is 'Grain: one row per outcome, fit (device_type NULL: pooled over types) and model term of the Poisson GLM (log rate per device-hour). term: type:<t> / intercept, age_years, <factor>:linear (coefficient per unit of (value - center)), <factor>:above (coefficient per unit above threshold). threshold_c (older column) repeats the temperature threshold.';

create table environment_limits (
    outcome            varchar not null,
    device_type        varchar,
    factor             varchar not null,
    kind               varchar not null,
    limit_value        double,
    limit_ci_low       double,
    limit_ci_high      double,
    log_rate_ratio     double,
    ci_low             double,
    ci_high            double,
    p_adjusted         double,
    sentence           varchar not null,
    computed_at        timestamp not null,
    params             varchar not null
);
comment on table environment_limits is 'Grain: one row per outcome, significant factor and device type (NULL: all types). The operating limit that follows from the fitted form: kind keep_below (the above-threshold term is significant; limit_value = its threshold with a profile 95% interval; log_rate_ratio per unit above it) or lower_is_better (a linear effect without a threshold; limit_value NULL). sentence: the finding in words.';

-- Environment monitors: a device is one when devices.is_environment_monitor is
-- true, or when it is NULL and its device_type is listed here.
alter table devices add column is_environment_monitor boolean;
create table environment_monitor_types (
    device_type   varchar primary key,
    note          varchar
);
comment on table environment_monitor_types is 'Grain: one row per device type whose devices are environment monitors (unless a device says is_environment_monitor = false). Shipped with env_monitor; add your own types with an insert.';
insert into environment_monitor_types values
    ('env_monitor', 'the environment monitor type of the tsfleet simulator and of the examples');
