-- Firmware management: version schemes, settings, parsed versions, the OSV
-- advisories, their evaluation, and security events raised at ingest time.
create table firmware_schemes (
    manufacturer varchar not null,
    model        varchar not null,
    scheme       varchar not null,
    note         varchar,
    set_at       timestamp not null,
    primary key (manufacturer, model)
);
comment on table firmware_schemes is 'Grain: one row per configured version scheme of a manufacturer and model (model ''*'': every model of the manufacturer). Models without a row get the scheme detected from their catalog, else semver.';

create table firmware_settings (
    name        varchar primary key,
    value       double not null,
    unit        varchar not null,
    description varchar not null
);
comment on table firmware_settings is 'Grain: one row per tunable threshold of the firmware views (read by the views, change with Firmware.configure).';

insert into firmware_settings values
    ('stuck_after_hours',        48,   'h',     'An update in a non-terminal state (downloading, downloaded, updating) longer than this is stuck.'),
    ('halt_failure_rate',        0.20, 'ratio', 'Recommend halting a campaign when failed and rolled back devices reach this share of finished ones.'),
    ('halt_min_finished',        10,   'count', 'A campaign needs this many finished devices before a halt is recommended.'),
    ('health_window_days',       7,    'd',     'Post-update health compares this many days after an update with as many days before.'),
    ('health_drain_ratio',       1.5,  'ratio', 'A version is unhealthy when its median battery drain after the update is this many times the drain before.'),
    ('health_min_devices',       5,    'count', 'A health verdict needs this many updated devices with data on both sides.'),
    ('health_failure_increase',  0.05, 'ratio', 'A version is unhealthy when the share of devices with a failure event rises by this much after the update.'),
    ('health_silent_increase',   0.10, 'ratio', 'A version is unhealthy when the share of devices silent for a day or more rises by this much after the update.');

create table firmware_versions (
    manufacturer   varchar not null,
    model          varchar not null,
    version        varchar not null,
    scheme         varchar not null,
    scheme_source  varchar not null,
    version_rank   integer,
    canonical      varchar,
    parse_error    varchar,
    computed_at    timestamp not null,
    params         varchar not null
);
comment on table firmware_versions is 'Grain: one row per version string known for a model (catalog, reports, advisories). version_rank orders the versions of a model (1 = oldest, equal versions share a rank; null when the scheme cannot parse the string, see parse_error). scheme_source: configured, detected or default.';

create table firmware_advisories (
    advisory_id   varchar primary key,
    summary       varchar,
    severity      varchar not null,
    score         double,
    published_at  varchar,
    modified_at   varchar,
    aliases       varchar,
    record        varchar not null,
    batch_id      bigint not null,
    loaded_at     timestamp not null
);
comment on table firmware_advisories is 'Grain: one row per OSV record loaded. severity: CRITICAL, HIGH, MODERATE, LOW or UNKNOWN; score the numeric CVSS score where the feed gives one; record the OSV JSON as received.';

create table firmware_vulnerable_versions (
    manufacturer  varchar not null,
    model         varchar not null,
    version       varchar not null,
    advisory_id   varchar not null,
    severity      varchar not null,
    score         double,
    computed_at   timestamp not null,
    params        varchar not null
);
comment on table firmware_vulnerable_versions is 'Grain: one row per known version of a model and OSV advisory that affects it, evaluated with the model''s version scheme.';

create table firmware_security_events (
    device_id          varchar not null,
    kind               varchar not null,
    version            varchar not null,
    image_hash         varchar,
    previous_version   varchar,
    expected_hash      varchar,
    first_reported_at  timestamp not null,
    last_reported_at   timestamp not null,
    detected_at        timestamp not null,
    detail             varchar not null,
    batch_id           bigint not null
);
comment on table firmware_security_events is 'Grain: one row per unexpected firmware state of a device (kind: untargeted, downgrade, hash_mismatch, not_in_catalog, unparsable), raised when the report is ingested. first/last_reported_at: reports showing it (UTC); detected_at: when tsfleet raised it.';

create table firmware_checked_batches (
    batch_id     bigint primary key,
    n_reports    bigint not null,
    n_events     bigint not null,
    checked_at   timestamp not null,
    elapsed_ms   double not null
);
comment on table firmware_checked_batches is 'Grain: one row per ingest batch of firmware_reports checked for unexpected changes; elapsed_ms is the time the check took.';
