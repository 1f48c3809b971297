-- Which post-update health the firmware views read. On one node the per-device health is
-- computed from the readings when read (view firmware_update_device_health). A distributed
-- run (tsfleet analyze --engine dask) computes it per device bucket on the workers and
-- stores it in firmware_device_health; it then records itself here, and the views read
-- those stored rows instead of scanning the readings, so that every view, CLI report and
-- fleet.firmware.health() shows the distributed answers. A single-node firmware analysis
-- clears this table (and the stored rows): the views compute from the readings again.
-- The release verdicts are pooled by the view firmware_update_health when read (over the
-- stored rows or the computed ones), so the table that held them is dropped.
create table firmware_health_source (
    engine       varchar   not null,
    lake         varchar   not null,
    computed_at  timestamp not null,
    params       varchar   not null
);
comment on table firmware_health_source is 'Grain: at most one row: present when the last firmware analysis was distributed, and the views firmware_update_device_health and firmware_update_health read its per-device rows stored in firmware_device_health (as of the lake it read: lake, the path); absent when they compute them from the readings when read (a single-node run, or none yet). engine is dask; computed_at (UTC) and params (JSON) are the run''s.';
comment on table firmware_device_health is 'Grain: one row per campaign and device that succeeded an update (as the view firmware_update_device_health), from the last distributed firmware run; the views read these rows while firmware_health_source holds that run. Drains in %/day, windows in days.';
drop table if exists firmware_release_health;
