-- The parameters pooled per device type, cached with the Holt-Winters smoothing
-- parameters so that an incremental forecast of a few devices uses exactly what
-- a forecast of the whole fleet uses: the type prior (median rate) and the
-- empirical-Bayes temperature shrinkage (mean and between-device variance of the
-- consumption coefficient k and of the gauge effect g).
alter table battery_holt_params add column prior_rate_pct_per_day double;
alter table battery_holt_params add column k_mean_per_c double;
alter table battery_holt_params add column k_tau2 double;
alter table battery_holt_params add column g_mean_pct_per_c double;
alter table battery_holt_params add column g_tau2 double;
comment on table battery_holt_params is 'Grain: one row per device type. alpha/beta/phi: Holt-Winters smoothing (level, trend) and damping; source: statsmodels:<n> fits or default; prior_rate_pct_per_day: the type prior (% per day); k_mean_per_c, k_tau2 (per C, per C squared) and g_mean_pct_per_c, g_tau2 (% per C, squared): the temperature shrinkage; fitted_through: last day of data the pooled values saw.';
