-- Environment monitors in the order of their monitor_index (monitor_raw.sql).
-- grain: one row per environment monitor
select device_id, zone
from devices
where device_type = 'env_monitor'
order by device_id
