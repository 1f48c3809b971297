-- The model of each battery forecast, chosen per device by a rolling-origin backtest
-- on its own history (tsfleet.power.choice), and the temperature the forecast
-- expects ahead (tsfleet.power.ahead).
alter table battery_forecast add column chosen_model varchar;
alter table battery_forecast add column runner_up_model varchar;
alter table battery_forecast add column backtest_error_pct double;
alter table battery_forecast add column runner_up_error_pct double;
alter table battery_forecast add column backtest_days double;
alter table battery_forecast add column backtest_origins integer;
alter table battery_forecast add column temperature_ahead_c double;
alter table battery_forecast add column temperature_basis varchar;
comment on table battery_forecast is 'Grain: one row per battery device per forecast run. Levels in %, rate in % per day; *_lo/*_hi are the 90% interval (a later date is the hi end); method holt_winters (the device''s own models) or a fallback (previous_segment, type_prior, no_data, no_curve) with its reason; alpha/beta/phi are the Holt-Winters smoothing and damping parameters. chosen_model (holt_winters or line_14d; a fallback''s method) won the backtest on the device''s own history over backtest_days days from backtest_origins origins, with backtest_error_pct (mean |predicted - actual| drop, % of the actual drop); runner_up_model and runner_up_error_pct the second best; no origin: the pooled choice of its device type (reason says so). temperature_ahead_c: the mean zone temperature expected over the horizon (C), from temperature_basis (last_year, damped_trend, recent_week, none).';
alter table battery_holt_params add column knee_shown double;
alter table battery_holt_params add column pooled_model varchar;
