-- The firmware views' thresholds (from firmware_settings) and their reference time.
-- grain: one row
-- columns: as_of (timestamp, UTC: the newest firmware report, update event or reading,
--   so a replayed or simulated history is judged as of its own end), stuck_after_hours (h),
--   halt_failure_rate (ratio), halt_min_finished (count), health_window_days (d),
--   health_drain_ratio (ratio), health_min_devices (count), health_failure_increase (ratio),
--   health_silent_increase (ratio)
create view firmware_params as
with settings as (
    select
        max(value) filter (where name = 'stuck_after_hours') as stuck_after_hours,
        max(value) filter (where name = 'halt_failure_rate') as halt_failure_rate,
        max(value) filter (where name = 'halt_min_finished') as halt_min_finished,
        max(value) filter (where name = 'health_window_days') as health_window_days,
        max(value) filter (where name = 'health_drain_ratio') as health_drain_ratio,
        max(value) filter (where name = 'health_min_devices') as health_min_devices,
        max(value) filter (where name = 'health_failure_increase') as health_failure_increase,
        max(value) filter (where name = 'health_silent_increase') as health_silent_increase
    from firmware_settings
),
newest as (
    select greatest((select max(reported_at) from firmware_reports),
                    (select max(event_at) from update_events),
                    (select max(observed_at) from device_latest)) as as_of
),
final as (
    select newest.as_of, settings.* from newest cross join settings
)
select * from final
