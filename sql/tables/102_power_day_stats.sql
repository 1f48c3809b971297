-- Daily aggregates of the power analysis, maintained incrementally: the battery
-- level and the temperature per device and UTC day, and the watermark (the last
-- ingest batch folded in). tsfleet.power.daystats.refresh recomputes only the
-- (device, day) keys with readings in batches after the watermark, from the raw
-- readings and, where those aged out (retention), the hourly rollup; so the
-- forecast reads about 90 rows per device instead of every reading.
create table battery_day_stats (
    device_id        varchar not null,
    day              date not null,
    level_pct        double,
    first_level_pct  double,
    last_level_pct   double,
    n_readings       bigint not null,
    mean_observed_at timestamp,
    last_observed_at timestamp
);
comment on table battery_day_stats is 'Grain: one row per battery device and UTC day with battery readings. level_pct (%): mean normalized level (voltage-only devices through the chemistry curve), weighted by readings; first/last_level_pct (%): medians of the hours before / after noon; mean_observed_at, last_observed_at (UTC). Maintained by tsfleet.power.daystats.refresh.';

create table temperature_day_stats (
    device_id        varchar not null,
    day              date not null,
    temperature_c    double not null,
    n_readings       bigint not null
);
comment on table temperature_day_stats is 'Grain: one row per device and UTC day with temperature_c readings. temperature_c (degrees C): mean of the day, weighted by readings. Maintained by tsfleet.power.daystats.refresh.';

create table power_refresh (
    batch_id         bigint,
    target_batch_id  bigint,
    refreshed_at     timestamp
);
comment on table power_refresh is 'Grain: one row (the watermark). batch_id: readings in batches up to it are folded into battery_day_stats and temperature_day_stats (null: nothing yet, the next refresh rebuilds); target_batch_id: the batch a running refresh folds in up to.';
