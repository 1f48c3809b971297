-- Issue #22, session 13: an unmapped field's payload is kept once per payload, not on
-- every field row of it. One SenML pack of 183 KB with 4,000 unknown names stored 4,000
-- copies of its 16 KiB text (65.6 MB). The fields move to unmapped_items and the
-- payloads to unmapped_payloads; `unmapped` is now a view of the same columns in the
-- same order (sql/views/699_unmapped.sql), so queries of it keep working.
create table unmapped_payloads (
    payload_sha256  varchar not null primary key,
    payload         varchar not null
);
insert into unmapped_payloads
select payload_sha256, min(payload) from unmapped group by payload_sha256;

create table unmapped_items (
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
    reason          varchar not null,
    primary key (payload_sha256, item)
);
insert into unmapped_items
select payload_sha256, item, received_at, transport, source, format, device_id, observed_at,
       field, value, unit, reason
from unmapped;

drop table unmapped;

comment on table unmapped_items is 'Grain: one row per field of a received payload that no mapping turned into a row (payload_sha256, item = position in the payload). transport mqtt or coap; source the MQTT topic or CoAP path; format senml+json, senml+cbor, lwm2m+json, lwm2m+cbor or vendor:<profile>; observed_at UTC when the payload gave a time; value as text. The payload itself is in unmapped_payloads, once; the view unmapped joins them. A redelivered payload is not stored twice.';
comment on table unmapped_payloads is 'Grain: one row per received payload with unmapped fields (SHA-256 of all its bytes, hex). payload the payload as received (text, or base64: followed by base64 for binary), cut at 16 KiB with the number of bytes received.';
