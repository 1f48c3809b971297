-- Post-update health as result tables, written by a distributed firmware run
-- (tsfleet analyze --engine dask): the per-device rows computed per device bucket, and the
-- verdict per release pooled once over them. On one node the same answers are the live
-- views firmware_update_device_health and firmware_update_health; a distributed run keeps
-- them here, as of the lake it read, so that the coordinator does not scan the readings.
-- Each carries computed_at (UTC) and params (JSON of the run's arguments).
create table firmware_device_health (
    campaign_id               varchar not null,
    device_id                 varchar not null,
    manufacturer              varchar,
    model                     varchar,
    target_version            varchar,
    health_window_days        double,
    drain_before_pct_per_day  double,
    drain_after_pct_per_day   double,
    is_silent_before          boolean,
    is_silent_after           boolean,
    is_failed_before          boolean,
    is_failed_after           boolean,
    computed_at               timestamp not null,
    params                    varchar not null
);
comment on table firmware_device_health is 'Grain: one row per campaign and device that succeeded an update (as the view firmware_update_device_health), from the last distributed firmware run. Drains in %/day, windows in days.';

create table firmware_release_health (
    manufacturer              varchar,
    model                     varchar,
    version                   varchar,
    n_updated                 bigint,
    n_with_battery            bigint,
    drain_before_pct_per_day  double,
    drain_after_pct_per_day   double,
    drain_ratio               double,
    failure_share_before      double,
    failure_share_after       double,
    silent_share_before       double,
    silent_share_after        double,
    verdict                   varchar,
    reasons                   varchar,
    computed_at               timestamp not null,
    params                    varchar not null
);
comment on table firmware_release_health is 'Grain: one row per manufacturer, model and installed version (as the view firmware_update_health), pooled once over firmware_device_health by the last distributed firmware run. Drains in %/day, shares as ratios.';
