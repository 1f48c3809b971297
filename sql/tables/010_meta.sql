-- Bookkeeping: applied migrations, the view set, published objects, ingest
-- batches and the quarantine of rejected input.
create table schema_version (
    version    integer primary key,
    name       varchar not null,
    checksum   varchar not null,
    applied_at timestamptz not null
);
comment on table schema_version is 'Grain: one row per applied migration file of sql/tables.';

create table schema_views (
    checksum    varchar not null,
    created_at  timestamptz not null
);
comment on table schema_views is 'Grain: one row. Checksum of the sql/views files the current views came from.';

create table published_objects (
    name        varchar primary key,
    kind        varchar not null,
    grain       varchar,
    description varchar,
    source_file varchar
);
comment on table published_objects is 'Grain: one row per view tsfleet created from sql/views.';

create sequence ingest_batch_seq start 1;
create table ingest_batches (
    batch_id      bigint primary key,
    kind          varchar not null,
    source        varchar not null,
    started_at    timestamptz not null,
    finished_at   timestamptz,
    n_rows        bigint not null default 0,
    n_accepted    bigint not null default 0,
    n_duplicates  bigint not null default 0,
    n_quarantined bigint not null default 0,
    min_observed_at timestamp,
    max_observed_at timestamp
);
comment on table ingest_batches is 'Grain: one row per ingest call (or per chunk of a streamed file). Counts of rows in, accepted, duplicate and quarantined; observed time range (UTC).';

create table quarantine (
    batch_id       bigint not null,
    kind           varchar not null,
    source         varchar not null,
    reason         varchar not null,
    detail         varchar,
    raw            varchar not null,
    quarantined_at timestamptz not null
);
comment on table quarantine is 'Grain: one row per rejected input row. raw holds the row as JSON text exactly as received; reason is a short code, detail a sentence.';
