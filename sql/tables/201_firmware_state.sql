-- The firmware each device runs now, maintained when its reports are checked at ingest
-- (like device_latest for readings), so that the inventory views need not scan every
-- report of the fleet.
create table firmware_device_state (
    device_id         varchar primary key,
    version           varchar not null,
    image_hash        varchar,
    reported_at       timestamp not null,
    on_version_since  timestamp not null,
    n_reports         bigint not null,
    updated_at        timestamp not null
);
comment on table firmware_device_state is 'Grain: one row per device with a checked firmware report. version and image_hash of the latest report (reported_at, UTC); on_version_since (UTC): first report of the current uninterrupted run of that version; n_reports stored reports. Maintained by Firmware.check_reports.';
