-- Numeric telemetry in long format, and the latest value per device and metric.
create table readings (
    device_id    varchar not null,
    observed_at  timestamp not null,
    metric       varchar not null,
    value        double not null,
    batch_id     bigint not null
);
comment on table readings is 'Grain: one row per device, metric and observation time (UTC). value is in the unit the metric name carries (see metric_catalog). batch_id links to ingest_batches.';

create table device_latest (
    device_id    varchar not null,
    metric       varchar not null,
    observed_at  timestamp not null,
    value        double not null,
    batch_id     bigint not null,
    n_readings   bigint not null,
    first_observed_at timestamp not null,
    last_received_at  timestamptz not null,
    primary key (device_id, metric)
);
comment on table device_latest is 'Grain: one row per device and metric. The newest reading by observed_at, maintained at ingest; n_readings counts stored readings; last_received_at is when data last arrived.';
