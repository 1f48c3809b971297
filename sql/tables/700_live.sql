-- Live ingest (tsfleet serve): fields that no mapping knows, kept with their
-- payload, and the LwM2M battery status code as a metric.
create table unmapped (
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
    payload         varchar not null,
    primary key (payload_sha256, item)
);
comment on table unmapped is 'Grain: one row per field of a received payload that no mapping turned into a row (payload_sha256, item = position in the payload). transport mqtt or coap; source the MQTT topic or CoAP path; format senml+json, senml+cbor, lwm2m+json, lwm2m+cbor or vendor:<profile>; observed_at UTC when the payload gave a time; value as text; payload the whole payload as received (text, or base64: followed by base64 for binary). A redelivered payload is not stored twice.';

insert into metric_catalog values
    ('battery_status', 'code', 'battery status', 0, 6,
     'LwM2M /3/0/20 battery status code: 0 normal, 1 charging, 2 charge complete, 3 damaged, 4 low battery, 5 not installed, 6 unknown.');
