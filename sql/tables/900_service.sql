-- The running service: a record of every analysis run.
create sequence analysis_run_seq start 1;
create table analysis_runs (
    run_id           bigint primary key,
    analysis         varchar not null,
    started_at       timestamp not null,
    finished_at      timestamp,
    duration_s       double,
    status           varchar not null,
    error            varchar,
    n_items          bigint,
    is_incremental   boolean not null default false,
    from_batch_id    bigint,
    to_batch_id      bigint,
    data_until       timestamp
);
comment on table analysis_runs is 'Grain: one row per run of one analysis (power, firmware, calibration, environment, network, alerts). status: ok, failed or skipped; from/to_batch_id the ingest batches the run covered; data_until the newest observation time it saw (UTC); n_items the devices, sensors, zones or gateways recomputed.';
