-- sensor_residuals becomes a view (sql/views/307_sensor_residuals.sql):
-- detect() computes residuals on a numpy grid and no longer stores them hour
-- by hour (21.6 million rows at 10,000 sensors x 90 days).
drop table if exists sensor_residuals;
