-- Readings rolled up to the hour, so that devices reporting at different
-- phase offsets can be compared hour by hour.
-- grain: one row per device, metric and UTC hour
-- columns: hour_at (UTC hour start), value_mean, value_min, value_max, value_last
--          (in the metric's unit), n_readings
create or replace view readings_hourly as
with bucketed as (
    select
        device_id,
        metric,
        date_trunc('hour', observed_at) as hour_at,
        observed_at,
        value
    from readings
),

final as (
    select
        device_id,
        metric,
        hour_at,
        avg(value) as value_mean,
        min(value) as value_min,
        max(value) as value_max,
        arg_max(value, observed_at) as value_last,
        count(*) as n_readings
    from bucketed
    group by device_id, metric, hour_at
)

select * from final
