-- Facts that are not number series: firmware, updates, calibrations,
-- connections, gateway statistics and device events. All times UTC.
create table firmware_reports (
    device_id    varchar not null,
    reported_at  timestamp not null,
    version      varchar not null,
    image_hash   varchar,
    batch_id     bigint not null
);
comment on table firmware_reports is 'Grain: one row per firmware version report of a device (device_id, reported_at). image_hash is the hex digest the device reports, if any.';

create table firmware_releases (
    manufacturer   varchar not null,
    model          varchar not null,
    version        varchar not null,
    released_at    timestamp,
    status         varchar not null,
    hardware_revs  varchar,
    image_hash     varchar,
    batch_id       bigint not null,
    primary key (manufacturer, model, version)
);
comment on table firmware_releases is 'Grain: one row per release of a model. status: target, approved, deprecated or revoked; hardware_revs a comma-separated list of compatible revisions (empty: all).';

create table update_events (
    campaign_id     varchar not null,
    device_id       varchar not null,
    event_at        timestamp not null,
    state           varchar not null,
    target_version  varchar,
    reason          varchar,
    batch_id        bigint not null
);
comment on table update_events is 'Grain: one row per state change of a device in an update campaign. state: scheduled, downloading, downloaded, updating, succeeded, failed, rolled_back.';

create table calibrations (
    device_id        varchar not null,
    calibrated_at    timestamp not null,
    reference_value  double,
    measured_value   double,
    offset_applied   double not null default 0,
    gain_applied     double not null default 1,
    performed_by     varchar,
    batch_id         bigint not null
);
comment on table calibrations is 'Grain: one row per calibration of a sensor. reference_value and measured_value are in the unit of the device''s measured metric; the correction applied is value * gain_applied + offset_applied.';

create table connections (
    device_id   varchar not null,
    gateway_id  varchar not null,
    event_at    timestamp not null,
    event       varchar not null,
    rssi_dbm    double,
    snr_db      double,
    batch_id    bigint not null
);
comment on table connections is 'Grain: one row per connection event: connect, disconnect, or heard (the device was heard by that gateway with rssi_dbm and snr_db).';

create table gateway_stats (
    gateway_id        varchar not null,
    observed_at       timestamp not null,
    is_up             boolean not null default true,
    cpu_pct           double,
    memory_pct        double,
    latency_ms        double,
    packet_loss_pct   double,
    messages_per_s    double,
    n_connected       integer,
    batch_id          bigint not null
);
comment on table gateway_stats is 'Grain: one row per gateway and observation. cpu_pct and memory_pct 0..100; latency_ms mean round trip; packet_loss_pct 0..100; messages_per_s mean rate since the previous observation.';

create table device_events (
    device_id  varchar not null,
    event_at   timestamp not null,
    event      varchar not null,
    detail     varchar,
    batch_id   bigint not null
);
comment on table device_events is 'Grain: one row per device event: failure, reboot, battery_replaced, installed, removed, maintenance.';
