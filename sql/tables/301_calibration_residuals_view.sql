-- sensor_residuals becomes a view (sql/views/307_sensor_residuals.sql):
-- detect() computes residuals on a numpy grid and no longer stores them hour
-- by hour (21.6 million rows at 10,000 sensors x 90 days).
drop table if exists sensor_residuals;

comment on table calibration_peer_exclusions is 'Grain: one row per sensor left out of its peers'' consensus because the first pass of detect() found it faulty (verdict ''fault'': dead, out of range or stuck) or its drift estimate at the watch level or beyond (''drifting''), so that drifting neighbours do not drag the median.';
