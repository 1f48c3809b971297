-- Alerting and maintenance: alerts and their history, silences, rule runs,
-- the notification outbox, work orders and ticket deliveries. All times UTC.
create table alerts (
    fingerprint       varchar primary key,
    rule              varchar not null,
    state             varchar not null,
    severity          varchar,
    domain            varchar,
    finding           varchar,
    subject_kind      varchar,
    subject_id        varchar,
    site              varchar,
    zone              varchar,
    value             double,
    labels            varchar not null,
    annotations       varchar not null,
    action            varchar,
    due_at            timestamp,
    observed_at       timestamp,
    episode           integer not null,
    active_since      timestamp,
    starts_at         timestamp,
    ends_at           timestamp,
    last_seen_at      timestamp,
    last_evaluated_at timestamp not null,
    acknowledged_at   timestamp,
    acknowledged_by   varchar,
    silenced_by       varchar,
    computed_at       timestamp not null,
    params            varchar
);
comment on table alerts is 'Grain: one row per alert fingerprint (rule plus identity labels). state: pending, firing, acknowledged or resolved; episode counts the times it became active; active_since: the condition has held since; starts_at: firing since; ends_at: resolved at; last_seen_at: last evaluation at which the condition held; labels and annotations are JSON objects; silenced_by is the id of the silence muting it now.';

create table alert_history (
    fingerprint   varchar not null,
    rule          varchar not null,
    episode       integer not null,
    changed_at    timestamp not null,
    from_state    varchar,
    to_state      varchar not null,
    severity      varchar,
    value         double,
    detail        varchar
);
comment on table alert_history is 'Grain: one row per state change of an alert (from_state null: created; to_state dropped: a pending alert whose condition cleared before its for: elapsed).';

create table silences (
    silence_id  varchar primary key,
    matchers    varchar not null,
    starts_at   timestamp not null,
    ends_at     timestamp not null,
    created_by  varchar,
    comment     varchar,
    created_at  timestamp not null
);
comment on table silences is 'Grain: one row per silence. matchers is a JSON list of [label, op, value] with op one of =, !=, =~, !~ (regular expressions match the whole value); it mutes matching alerts from starts_at until ends_at.';

create table alert_rule_runs (
    rule         varchar not null,
    source       varchar not null,
    status       varchar not null,
    reason       varchar,
    n_matches    bigint,
    duration_ms  double,
    evaluated_at timestamp not null,
    computed_at  timestamp not null,
    params       varchar
);
comment on table alert_rule_runs is 'Grain: one row per rule of the latest evaluation. status: ok, skipped (source view missing) or error (condition failed), with reason; n_matches rows of the source matched the condition.';

create table notifications (
    notification_id varchar primary key,
    fingerprint     varchar not null,
    episode         integer not null,
    status          varchar not null,
    created_at      timestamp not null,
    state           varchar not null,
    attempts        integer not null default 0,
    last_error      varchar,
    delivered_at    timestamp
);
comment on table notifications is 'Grain: one row per notification owed for an alert episode: status firing or resolved. state: pending, delivered or failed (retried by the next send); notification_id is fingerprint:episode:status, so it is enqueued and delivered at most once.';

create table work_orders (
    workorder_id  varchar primary key,
    site          varchar not null,
    visit_no      integer not null,
    due_at        timestamp not null,
    severity      varchar not null,
    n_items       integer not null,
    actions       varchar not null,
    revision      varchar not null,
    computed_at   timestamp not null,
    params        varchar
);
comment on table work_orders is 'Grain: one row per planned site visit. due_at is the due date of its most urgent item; actions lists action:count; revision is a hash of its items (changes when items change); workorder_id is stable while its most urgent item stays.';

create table work_order_items (
    workorder_id  varchar not null,
    item_id       varchar not null,
    domain        varchar not null,
    finding       varchar not null,
    subject_kind  varchar not null,
    subject_id    varchar not null,
    site          varchar not null,
    zone          varchar,
    severity      varchar not null,
    action        varchar not null,
    due_at        timestamp not null,
    value         double,
    summary       varchar,
    computed_at   timestamp not null,
    params        varchar
);
comment on table work_order_items is 'Grain: one row per open finding with an action, in the work order of the site visit that handles it. due_at: the finding''s due date, or one derived from its severity when it gave none.';

create table ticket_deliveries (
    workorder_id  varchar not null,
    revision      varchar not null,
    endpoint      varchar not null,
    state         varchar not null,
    attempts      integer not null,
    last_status   integer,
    last_error    varchar,
    first_attempt_at timestamp not null,
    delivered_at  timestamp,
    primary key (workorder_id, revision, endpoint)
);
comment on table ticket_deliveries is 'Grain: one row per work order revision and ticket endpoint. state: delivered or failed (retried by the next export); the idempotency key sent is workorder_id:revision.';
