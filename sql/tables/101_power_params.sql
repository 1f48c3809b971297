-- Shared Holt-Winters parameters per device type, cached between forecast runs,
-- and the gauge temperature effect added to battery_patterns.
-- The smoothing parameters are fitted by statsmodels on a few steady devices of
-- each type; later runs reuse them while they are recent (see
-- tsfleet.power.forecast.REFIT_DAYS), so that a routine run needs no fit at all.
create table battery_holt_params (
    device_type varchar primary key,
    alpha double,
    beta double,
    phi double,
    source varchar,
    fitted_through date,
    computed_at timestamp,
    params json
);
comment on table battery_holt_params is 'Grain: one row per device type. alpha/beta/phi: Holt-Winters smoothing (level, trend) and damping; source: statsmodels:<n> fits or default; fitted_through: last day of data the fits saw.';

alter table battery_patterns add column temp_gauge_pct_per_c double;
