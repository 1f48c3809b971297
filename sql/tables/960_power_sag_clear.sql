-- The load sag of voltage-only devices is searched across each curve's whole span
-- (it stopped at 60 mV), and a device type keeps its devices' own sags only where
-- they are, on average, clearly straighter with them (tsfleet.power.sag):
-- sag_clear 1 they do, 0 they get none (a new cell's still counts), NaN no sag pooled.
-- Rows cached before it keep sag_clear NaN (their devices keep their own sags, found
-- with the new search each run) until their type is pooled again.
alter table battery_holt_params add column sag_clear double;
comment on table battery_holt_params is 'Grain: one row per device type. alpha/beta/phi: Holt-Winters smoothing (level, trend) and damping; source: statsmodels:<n> fits or default; prior_rate_pct_per_day: the type prior (% per day); k_mean_per_c, k_tau2 (per C, per C squared) and g_mean_pct_per_c, g_tau2 (% per C, squared): the temperature shrinkage; sag_scale_c (C, inf: no temperature effect), sag_v_at_20c (V), sag_t_min_c and sag_t_max_c (C): the load sag of voltage-only devices, sag(T) = sag_v_at_20c * exp(-(T - 20) / sag_scale_c) with T held within sag_t_min_c..sag_t_max_c, NaN for a type without them; sag_clear: 1 where the type''s devices keep their own sags, 0 where they get none (not clearly straighter with them on average); knee_shown: whether the type''s percent gauges show the chemistry''s knee (1/0, NaN: none reached it yet); pooled_model: the model chosen most often by the type''s backtests; fitted_through: last day of data the pooled values saw.';
