-- The load sag of voltage-only devices (tsfleet.power.sag): a device read under
-- load reads below its chemistry's open-circuit curve, by more as it gets colder.
-- Per device in battery_patterns; the scale of its growth towards the cold and the
-- median sag per device type cached with the other pooled parameters.
alter table battery_holt_params add column sag_scale_c double;
alter table battery_holt_params add column sag_v_at_20c double;
comment on table battery_holt_params is 'Grain: one row per device type. alpha/beta/phi: Holt-Winters smoothing (level, trend) and damping; source: statsmodels:<n> fits or default; prior_rate_pct_per_day: the type prior (% per day); k_mean_per_c, k_tau2 (per C, per C squared) and g_mean_pct_per_c, g_tau2 (% per C, squared): the temperature shrinkage; sag_scale_c (C, inf: no temperature effect) and sag_v_at_20c (V): the load sag of voltage-only devices, sag(T) = sag_v_at_20c * exp(-(T - 20) / sag_scale_c), null without them; fitted_through: last day of data the pooled values saw.';
alter table battery_patterns add column load_sag_v_at_20c double;
alter table battery_patterns add column load_sag_scale_c double;
comment on table battery_patterns is 'Grain: one row per battery device. pattern: steady, accelerating, step_change, temperature_sensitive, charging, erratic or insufficient_data. Rates in % per day over the current battery segment (since the last reset); change_at is the detected step; temp_coef_per_c is the relative change of the rate per degree C (t statistic in temp_coef_t); temp_gauge_pct_per_c: the level''s own temperature effect left after the load sag; load_sag_v_at_20c (V) and load_sag_scale_c (C): the load sag removed from a voltage-only device''s readings, null for the others.';
