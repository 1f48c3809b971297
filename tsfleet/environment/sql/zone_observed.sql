-- Valid environment-monitor readings per zone, metric and hour: their mean and
-- how many monitors contributed.
-- params: $start, $end (UTC hour range [start, end))
-- grain: one row per zone, metric and hour with at least one valid reading
select zone, metric, hour_at, avg(value) as value, count(distinct device_id) as n_monitors
from environment_monitor_readings
where is_valid and hour_at >= $start and hour_at < $end
group by all
