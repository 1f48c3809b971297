-- LoRaWAN network servers (ChirpStack v4, The Things Stack v3) as live sources:
-- what the network server knows about a device and each uplink's frame counter,
-- the gateway bridge's packet counters on gateway_stats, the link margin metric
-- and the device events a network server reports. All times UTC.

create table lorawan_devices (
    device_id            varchar primary key,
    network_server       varchar not null,
    dev_eui              varchar,
    device_name          varchar,
    application_id       varchar,
    application_name     varchar,
    device_profile_name  varchar,
    tags                 varchar,
    is_mains             boolean,
    updated_at           timestamp
);
comment on table lorawan_devices is 'Grain: one row per device a LoRaWAN network server reported (device_id = DevEUI for ChirpStack, the device id for The Things Stack). network_server chirpstack | tts; tags a JSON object; is_mains true when the device reports an external power source (null: not yet reported); updated_at the time of the newest event that changed these facts, UTC (the newest uplink is in lorawan_uplinks). Kept up to date by tsfleet serve.';

create table lorawan_uplinks (
    device_id            varchar not null,
    uplink_at            timestamp not null,
    f_cnt                bigint not null,
    f_port               integer,
    dr                   integer,
    n_gateways           integer not null,
    downlink_gateway_id  varchar,
    network_server       varchar not null,
    primary key (device_id, uplink_at, f_cnt)
);
comment on table lorawan_uplinks is 'Grain: one row per deduplicated uplink of a device (device_id, uplink_at UTC, f_cnt the uplink frame counter). n_gateways counts the gateways that received it; downlink_gateway_id is the gateway the network server would answer through (the receiving gateway with the best SNR, then RSSI). A redelivered event is not stored twice.';

alter table gateway_stats add column n_rx_received bigint;
alter table gateway_stats add column n_rx_ok bigint;
alter table gateway_stats add column n_tx_requested bigint;
alter table gateway_stats add column n_tx_emitted bigint;
alter table gateway_stats add column n_tx_acknowledged bigint;

insert into metric_catalog values
    ('link_margin_db', 'dB', 'link margin', -32, 31,
     'LoRaWAN DevStatusAns demodulation margin of the last downlink as the device received it, dB (the network server''s status event margin).');
