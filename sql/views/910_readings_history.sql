-- Readings at hourly resolution over the whole history: the raw readings rolled
-- up to the hour where they are still kept, and the hourly rollup where they
-- aged out. Analyses that work hour by hour read this view and keep working
-- after retention deletes raw data.
-- grain: one row per device, metric and UTC hour
-- columns: hour_at (UTC), value_mean, value_min, value_max, value_last (the metric's
--          unit), n_readings, is_rollup (true where the raw readings are gone)
create or replace view readings_history as
with raw as (
    select
        device_id, metric, hour_at, value_mean, value_min, value_max, value_last,
        n_readings, false as is_rollup
    from readings_hourly
),

rolled as (
    select
        r.device_id, r.metric, r.hour_at, r.value_mean, r.value_min, r.value_max,
        r.value_last, r.n_readings, true as is_rollup
    from readings_hourly_rollup as r
    anti join raw as w
        on w.device_id = r.device_id and w.metric = r.metric and w.hour_at = r.hour_at
),

final as (
    select * from raw
    union all
    select * from rolled
)

select * from final
