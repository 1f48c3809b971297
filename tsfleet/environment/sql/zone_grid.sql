-- Every zone (of any device) and hour of the window.
-- params: $start, $end (UTC hour range [start, end))
-- grain: one row per zone and hour
select z.zone, h.hour_at
from (select distinct zone from devices) as z
cross join (select unnest(range($start::timestamp, $end::timestamp, interval 1 hour))
            as hour_at) as h
