-- Valid environment-monitor readings per zone, metric and hour: their mean and
-- how many monitors contributed.
-- Reads _env_monitor_readings (environment_monitor_readings, materialized once).
-- params: $start, $end (UTC hour range [start, end))
-- grain: one row per zone, metric and hour with at least one valid reading
select zone, metric, hour_at, avg(value) as value, count(distinct device_id) as n_monitors
from _env_monitor_readings
where is_valid and hour_at >= $start and hour_at < $end
group by all
