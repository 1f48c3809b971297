-- Daily aggregates of the power analysis, maintained incrementally: the battery
-- level and the temperature per device and UTC day, and the watermark (the last
-- ingest batch folded in). tsfleet.power.daystats.refresh recomputes only the
-- (device, day) keys with readings in batches after the watermark, from the raw
-- readings and, where those aged out (retention), the hourly rollup; so the
-- forecast reads about 90 rows per device instead of every reading.
create table battery_day_stats (
    device_id        varchar not null,
    day              date not null,
    n_readings       bigint not null,
    level_sum        double not null,
    epoch_sum        double not null,
    last_observed_at timestamp not null,
    am_n             bigint not null,
    am_level_sum     double not null,
    pm_n             bigint not null,
    pm_level_sum     double not null
);
comment on table battery_day_stats is 'Grain: one row per battery device and UTC day with battery readings. Sums over the day''s readings of the normalized level (%; voltage-only devices through the chemistry curve) and of the observation time (epoch seconds), in total and for the hours before (am) and after (pm) noon; n_readings, last_observed_at (UTC). The view battery_daily turns them into means. Maintained by tsfleet.power.daystats.refresh.';

create table temperature_day_stats (
    device_id        varchar not null,
    day              date not null,
    n_readings       bigint not null,
    temperature_sum  double not null
);
comment on table temperature_day_stats is 'Grain: one row per device and UTC day with temperature_c readings. temperature_sum (degrees C summed over n_readings readings). Maintained by tsfleet.power.daystats.refresh.';

create table power_refresh (
    batch_id         bigint,
    target_batch_id  bigint,
    refreshed_at     timestamp
);
comment on table power_refresh is 'Grain: one row (the watermark). batch_id: readings in batches up to it are folded into battery_day_stats and temperature_day_stats (null: nothing yet, the next refresh rebuilds); target_batch_id: the batch a running refresh folds in up to.';
