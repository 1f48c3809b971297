-- Rollups that outlive the raw readings, and the record of retention runs.
create table readings_hourly_rollup (
    device_id         varchar not null,
    metric            varchar not null,
    hour_at           timestamp not null,
    value_mean        double not null,
    value_min         double not null,
    value_max         double not null,
    value_last        double not null,
    last_observed_at  timestamp not null,
    n_readings        bigint not null,
    primary key (device_id, metric, hour_at)
);
comment on table readings_hourly_rollup is 'Grain: one row per device, metric and UTC hour whose raw readings aged out. Values in the metric''s unit; n_readings raw readings summarized.';

create table readings_daily_rollup (
    device_id         varchar not null,
    metric            varchar not null,
    day               date not null,
    value_mean        double not null,
    value_min         double not null,
    value_max         double not null,
    value_last        double not null,
    last_observed_at  timestamp not null,
    n_readings        bigint not null,
    primary key (device_id, metric, day)
);
comment on table readings_daily_rollup is 'Grain: one row per device, metric and UTC day whose raw readings aged out. Kept longer than the hourly rollup.';

create table retention_runs (
    ran_at            timestamp not null,
    raw_days          integer not null,
    hourly_days       integer not null,
    cutoff_at         timestamp not null,
    n_raw_deleted     bigint not null,
    n_hourly_rows     bigint not null,
    n_daily_rows      bigint not null
);
comment on table retention_runs is 'Grain: one row per retention run. cutoff_at (UTC): raw readings observed before it were rolled up and deleted.';
