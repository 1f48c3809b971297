-- Environment-monitor readings per hour with validity flags: the staging view
-- of the zone environment. It reads hourly history, like readings_history
-- (sql/views/910): raw readings rolled up to the hour where they are kept, the
-- hourly rollup (readings_hourly_rollup) where retention aged them out, merged
-- by count where both hold an hour; the monitors and metrics are selected before
-- the hourly aggregation, so only their readings are grouped. An hour is invalid when a reading of it is physically
-- implausible (out_of_range: temperature outside -40..85 degC, humidity <= 0 or
-- > 100 %RH, vibration > 16 g) or when it is stuck: all readings of one monitor
-- and metric in a 12-hour block (UTC, from midnight) are identical, at least 10
-- of them, and the hour has only that value, in that block or in the block
-- before or after (so the edges of a stuck episode are caught too). Invalid
-- hours are excluded, never trusted. Aggregates and one equality join against
-- the small table of stuck blocks: no sorting, no range joins.
-- grain: one row per environment monitor (view environment_monitors), metric (temperature_c, humidity_pct, vibration_g) and UTC hour with readings
-- columns: device_id, zone, site, metric, hour_at (UTC hour), value (hourly mean, unit
--   of the metric), value_min, value_max, n_readings,
--   block_at (start of its 12-hour block, UTC), is_rollup (from the hourly rollup),
--   is_out_of_range, is_stuck, is_valid
create or replace view environment_monitor_readings as
with monitors as (
    select device_id, zone, site from environment_monitors
),

-- raw readings as one-reading hours, and rolled-up hours where retention aged
-- the readings out; merged per hour below (weighted by counts, as retention merges)
history as (
    select
        r.device_id, r.metric, date_trunc('hour', r.observed_at) as hour_at,
        r.value as value_sum, r.value as value_min, r.value as value_max, 1 as n_readings,
        false as is_rollup
    from readings as r
    semi join monitors as m using (device_id)
    where r.metric in ('temperature_c', 'humidity_pct', 'vibration_g')
    union all
    select
        u.device_id, u.metric, u.hour_at, u.value_mean * u.n_readings, u.value_min,
        u.value_max, u.n_readings, true
    from readings_hourly_rollup as u
    semi join monitors as m using (device_id)
    where u.metric in ('temperature_c', 'humidity_pct', 'vibration_g')
),

hours as (
    select
        device_id, metric, hour_at, sum(value_sum) / sum(n_readings) as value,
        min(value_min) as value_min, max(value_max) as value_max,
        sum(n_readings)::bigint as n_readings, bool_and(is_rollup) as is_rollup
    from history
    group by device_id, metric, hour_at
),

monitor_hours as (
    select
        h.*, m.zone, m.site,
        epoch(h.hour_at)::bigint // 43200 as block,
        case h.metric
            when 'temperature_c' then h.value_min < -40 or h.value_max > 85
            when 'humidity_pct' then h.value_min <= 0 or h.value_max > 100
            else h.value_max > 16
        end as is_out_of_range
    from hours as h
    join monitors as m using (device_id)
),

stuck_blocks as (
    select device_id, metric, block, min(value_min) as value
    from monitor_hours
    group by device_id, metric, block
    having sum(n_readings) >= 10 and min(value_min) = max(value_max)
),

-- each stuck block and its two neighbours, with the stuck value: a small table
stuck_keys as (
    select distinct device_id, metric, block + d.step as block, value
    from stuck_blocks
    cross join (values (-1), (0), (1)) as d(step)
),

final as (
    select
        r.device_id, r.zone, r.site, r.metric, r.hour_at, r.value, r.value_min, r.value_max,
        r.n_readings, to_timestamp(r.block * 43200)::timestamp as block_at, r.is_rollup, r.is_out_of_range,
        s.device_id is not null as is_stuck,
        not (r.is_out_of_range or s.device_id is not null) as is_valid
    from monitor_hours as r
    left join stuck_keys as s
        on s.device_id = r.device_id and s.metric = r.metric and s.block = r.block
           and s.value = r.value_min and s.value = r.value_max
)

select * from final
