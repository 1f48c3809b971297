-- The declared environmental factors: metrics declared with is_environmental
-- (ingest kind "metrics"), with the unit and quantity of the metric catalog.
-- The built-in factors (temperature_c, humidity_pct, vibration_g) are not listed.
-- grain: one row per declared environmental metric
select d.metric, c.unit, coalesce(c.quantity, d.metric) as quantity
from metric_declarations as d
join metric_catalog as c using (metric)
where d.is_environmental
  and d.metric not in ('temperature_c', 'humidity_pct', 'vibration_g', 'daily_swing_c')
order by d.metric
