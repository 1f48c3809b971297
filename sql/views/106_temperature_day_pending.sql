-- Daily mean temperature of the keys in power_refresh_keys, as the next refresh
-- writes it into temperature_day_stats.
-- grain: one row per device and UTC day to recompute
-- columns: temperature_c (degrees C, mean weighted by readings), n_readings
create or replace view temperature_day_pending as
with src as (
    select * from power_refresh_source where metric = 'temperature_c'
),
final as (
    select device_id, observed_at::date as day,
           sum(value * weight) / sum(weight) as temperature_c,
           sum(weight) as n_readings
    from src
    group by all
)
select * from final
