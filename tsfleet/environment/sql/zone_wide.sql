-- The zone environment per hour, as stored in environment_zone_hourly.
-- Reads the temporary table _env_zone (the result of zone_hourly.sql).
-- grain: one row per zone and hour
select zone, hour_at, temperature_c, humidity_pct, vibration_g, daily_swing_c, n_monitors,
       is_interpolated
from _env_zone
