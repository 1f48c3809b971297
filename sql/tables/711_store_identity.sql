-- The store's own identity: one random id made when the store is created (or
-- upgraded), so that a long-running client of an outside system (the MQTT
-- session of `tsfleet serve`) is named after this store and no other.
create table store_identity (
    store_id    varchar not null primary key,
    created_at  timestamp not null
);
comment on table store_identity is 'Grain: one row. store_id: a random UUID made by this migration; the default MQTT client id of tsfleet serve is derived from it (tsfleet-<first 16 hex digits>), so two stores never share a broker session. A copied store file keeps it: give the copy its own --client-id.';
insert into store_identity select cast(uuid() as varchar), cast(now() as timestamp);
