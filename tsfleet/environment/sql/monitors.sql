-- Environment monitors in the order of their monitor_index (view environment_monitors).
-- grain: one row per environment monitor
select device_id, zone
from environment_monitors
order by monitor_index
