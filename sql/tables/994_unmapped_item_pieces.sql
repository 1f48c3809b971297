-- Session 26: an unmapped field's name, value or unit longer than 64 characters is kept in
-- text_pieces too (see 991). In the hostile soak's mix unmapped_items held 86 MB per 600 s
-- in 55,000 rows (names of 300 and 10,000 characters, units of 2,000, values of 3,000),
-- and its last row group stays open for about 20 minutes at that rate, so the rows a
-- checkpoint merged at once kept growing.
--
-- unmapped_items becomes a view of the same columns (sql/views/697_unmapped_items.sql)
-- over unmapped_item_rows: field, value and unit are there when short, and NULL with
-- field_text_id, value_text_id or unit_text_id when their text is in text_pieces.
create table unmapped_item_rows (
    payload_sha256  varchar not null,
    item            integer not null,
    received_at     timestamptz not null,
    transport       varchar not null,
    source          varchar not null,
    format          varchar not null,
    device_id       varchar,
    observed_at     timestamp,
    field           varchar,
    value           varchar,
    unit            varchar,
    reason          varchar not null,
    field_text_id   bigint,
    value_text_id   bigint,
    unit_text_id    bigint,
    check ((field is null) <> (field_text_id is null)),
    check (value is null or value_text_id is null),
    check (unit is null or unit_text_id is null)
);
insert into unmapped_item_rows
select payload_sha256, item, received_at, transport, source, format, device_id, observed_at,
       field, value, unit, reason, NULL, NULL, NULL
from unmapped_items;
drop table unmapped_items;

comment on table unmapped_item_rows is 'Grain: one row per field of a received payload that no mapping turned into a row (payload_sha256, item = position in the payload); the table behind the view unmapped_items, which shows field, value and unit whole. A text of more than 64 characters is NULL here and in text_pieces under field_text_id, value_text_id or unit_text_id. transport mqtt or coap; source the MQTT topic or CoAP path; format senml+json, senml+cbor, lwm2m+json, lwm2m+cbor or vendor:<profile>; observed_at UTC when the payload gave a time; value as text.';
