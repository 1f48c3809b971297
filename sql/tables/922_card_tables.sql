-- The device card's copies, made after each analysis run (tsfleet.service.snapshots),
-- now created here instead of at run time: the findings of every domain in the
-- contract's columns, and the per-device state rows of the heavier state views as JSON.
-- The per-view tables earlier releases created at run time are dropped.
drop table if exists card_power_findings;
drop table if exists card_battery_state;
drop table if exists card_firmware_findings;
drop table if exists card_firmware_device_status;
drop table if exists card_calibration_findings;
drop table if exists card_environment_findings;
drop table if exists card_network_findings;
drop table if exists card_network_attachment;

create table card_findings (
    domain        varchar not null,
    finding       varchar not null,
    subject_kind  varchar,
    subject_id    varchar,
    site          varchar,
    zone          varchar,
    severity      varchar,
    value         double,
    summary       varchar,
    action        varchar,
    due_at        timestamp,
    observed_at   timestamp
);
comment on table card_findings is 'Grain: as the findings views (the findings contract), every domain. A copy of each domain''s findings view made after its last analysis run, for the device card and for the findings a run opened and closed; as fresh as that run (see freshness).';

create table card_state (
    source     varchar not null,
    device_id  varchar not null,
    state      json not null
);
create index card_state_device on card_state (device_id);
comment on table card_state is 'Grain: one row per state view (source: battery_state, firmware_device_status, network_attachment) and device. state: that view''s row as JSON, copied after the last analysis run of its domain, for the device card.';
