-- Every zone (of any device), environment metric and hour of the window.
-- params: $start, $end (UTC hour range [start, end))
-- grain: one row per zone, metric and hour
select z.zone, m.metric, h.hour_at
from (select distinct zone from devices) as z
cross join (values ('temperature_c'), ('humidity_pct'), ('vibration_g')) as m(metric)
cross join (select unnest(range($start::timestamp, $end::timestamp, interval 1 hour))
            as hour_at) as h
