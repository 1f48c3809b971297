-- The fleet's dimensions: devices and gateways. Ingested as upserts by id.
create table devices (
    device_id             varchar primary key,
    device_type           varchar not null,
    manufacturer          varchar not null,
    model                 varchar not null,
    hardware_rev          varchar,
    site                  varchar not null,
    zone                  varchar not null,
    battery_chemistry     varchar,
    battery_capacity_mah  double,
    reporting_interval_s  double,
    installed_at          timestamp,
    measures              varchar,
    is_reference          boolean not null default false,
    criticality           integer not null default 3,
    batch_id              bigint
);
comment on table devices is 'Grain: one row per device. installed_at is UTC; reporting_interval_s is the nominal interval from the profile, seconds; measures is the canonical metric of the primary sensor; criticality 1 (low) .. 5 (vital).';

create table gateways (
    gateway_id        varchar primary key,
    kind              varchar not null,
    site              varchar not null,
    zone              varchar,
    capacity_devices  integer not null,
    installed_at      timestamp,
    removed_at        timestamp,
    batch_id          bigint
);
comment on table gateways is 'Grain: one row per gateway or access point (kind). capacity_devices is the vendor limit of attached devices; times UTC.';
