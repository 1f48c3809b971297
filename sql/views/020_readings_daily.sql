-- Readings rolled up to the UTC day.
-- grain: one row per device, metric and UTC day
-- columns: day (UTC date), value_mean, value_min, value_max, value_first, value_last
--          (in the metric's unit), n_readings
create or replace view readings_daily as
with final as (
    select
        device_id,
        metric,
        cast(observed_at as date) as day,
        avg(value) as value_mean,
        min(value) as value_min,
        max(value) as value_max,
        arg_min(value, observed_at) as value_first,
        arg_max(value, observed_at) as value_last,
        count(*) as n_readings
    from readings
    group by device_id, metric, cast(observed_at as date)
)

select * from final
