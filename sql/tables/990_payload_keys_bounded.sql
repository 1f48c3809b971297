-- Session 25: the keys that de-duplicate live payloads are bounded.
--
-- A primary key is an ART index that DuckDB holds in memory once an insert has touched
-- it: about 100-150 bytes per key for a SHA-256 in hex. The keys of unmapped_items and
-- unmapped_payloads were one per distinct payload with unknown fields, kept for ever, so
-- serve's memory grew with every distinct payload a sender made up (the hostile soak of
-- docs/live.md). The two tables keep their rows and lose their primary keys; which
-- payload is new is decided by unmapped_keys, which serve's writer keeps to the most
-- recently received payloads (as it does quarantine_payloads). A payload received again
-- after its key left the window is stored again.
create table unmapped_items_new (
    payload_sha256  varchar not null,
    item            integer not null,
    received_at     timestamptz not null,
    transport       varchar not null,
    source          varchar not null,
    format          varchar not null,
    device_id       varchar,
    observed_at     timestamp,
    field           varchar not null,
    value           varchar,
    unit            varchar,
    reason          varchar not null
);
insert into unmapped_items_new select * from unmapped_items;
drop table unmapped_items;
alter table unmapped_items_new rename to unmapped_items;

create table unmapped_payloads_new (
    payload_sha256  varchar not null,
    payload         varchar not null
);
insert into unmapped_payloads_new select * from unmapped_payloads;
drop table unmapped_payloads;
alter table unmapped_payloads_new rename to unmapped_payloads;

create table unmapped_keys (
    payload_sha256  varchar not null primary key,
    received_at     timestamptz not null
);
insert into unmapped_keys
select payload_sha256, max(received_at) from unmapped_items group by payload_sha256;

comment on table unmapped_items is 'Grain: one row per field of a received payload that no mapping turned into a row (payload_sha256, item = position in the payload). transport mqtt or coap; source the MQTT topic or CoAP path; format senml+json, senml+cbor, lwm2m+json, lwm2m+cbor or vendor:<profile>; observed_at UTC when the payload gave a time; value as text. The payload itself is in unmapped_payloads, once; the view unmapped joins them. A payload redelivered while its key is in unmapped_keys is not stored twice.';
comment on table unmapped_payloads is 'Grain: one row per received payload with unmapped fields (SHA-256 of all its bytes, hex). payload the payload as received (text, or base64: followed by base64 for binary), cut at 16 KiB with the number of bytes received.';
comment on table unmapped_keys is 'Grain: one row per recently received payload with unmapped fields (SHA-256 of all its bytes, hex), with when it was first received. What decides that a payload is new; serve keeps the newest keys only, by first reception (tsfleet.live.writer.PAYLOAD_KEYS_KEPT), so memory does not grow with the store.';
comment on table quarantine_payloads is 'Grain: one row per distinct recently rejected live payload (SHA-256 of all its bytes, hex) and reason. batch_id is the ingest batch whose quarantine row holds it (kind = payload). serve keeps the keys of the newest batches only (tsfleet.live.writer.PAYLOAD_KEYS_KEPT): a payload rejected again after its key left is quarantined again.';
