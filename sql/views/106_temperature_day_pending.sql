-- internal: a step of tsfleet.power.daystats.refresh (reads power_refresh_rows)
-- Daily temperature sums of the rows in power_refresh_rows, as the next refresh
-- folds them into temperature_day_stats.
-- grain: one row per device and UTC day with temperature rows to fold in
-- columns: n_readings, temperature_sum (degrees C x readings)
create or replace view temperature_day_pending as
with src as not materialized (
    select * from power_refresh_rows where metric = 'temperature_c'
),
final as (
    select device_id, observed_at::date as day,
           sum(weight) as n_readings,
           sum(value * weight) as temperature_sum
    from src
    group by all
)
select * from final
