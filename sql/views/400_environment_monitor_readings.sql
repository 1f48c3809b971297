-- Environment-monitor readings with validity flags: the staging view of the
-- zone environment. A reading is invalid when physically implausible
-- (out_of_range: temperature outside -40..85 degC, humidity <= 0 or > 100 %RH,
-- vibration > 16 g) or stuck: all readings of one monitor and metric in a
-- 12-hour block (UTC, from midnight) are identical, at least 10 of them, and
-- the reading has that value in that block or in the block before or after
-- (so the edges of a stuck episode are caught too). Invalid readings are
-- excluded, never trusted. Aggregates and one equality join against the small
-- table of stuck blocks: no sorting, no range joins.
-- grain: one row per environment-monitor (device_type env_monitor) reading of temperature_c, humidity_pct or vibration_g
-- columns: device_id, zone, site, metric, observed_at (UTC), hour_at (UTC hour),
--   value (unit of the metric), block_at (start of its 12-hour block, UTC),
--   is_out_of_range, is_stuck, is_valid
create or replace view environment_monitor_readings as
with monitors as (
    select device_id, zone, site
    from devices
    where device_type = 'env_monitor'
),

monitor_readings as (
    select
        r.device_id, m.zone, m.site, r.metric, r.observed_at, r.value,
        epoch(r.observed_at)::bigint // 43200 as block,
        case r.metric
            when 'temperature_c' then r.value < -40 or r.value > 85
            when 'humidity_pct' then r.value <= 0 or r.value > 100
            else r.value > 16
        end as is_out_of_range
    from readings as r
    join monitors as m using (device_id)
    where r.metric in ('temperature_c', 'humidity_pct', 'vibration_g')
),

stuck_blocks as (
    select device_id, metric, block, min(value) as value
    from monitor_readings
    group by device_id, metric, block
    having count(*) >= 10 and min(value) = max(value)
),

-- each stuck block and its two neighbours, with the stuck value: a small table
stuck_keys as (
    select distinct device_id, metric, block + d.step as block, value
    from stuck_blocks
    cross join (values (-1), (0), (1)) as d(step)
),

final as (
    select
        r.device_id, r.zone, r.site, r.metric, r.observed_at,
        date_trunc('hour', r.observed_at) as hour_at,
        r.value, to_timestamp(r.block * 43200)::timestamp as block_at, r.is_out_of_range,
        s.device_id is not null as is_stuck,
        not (r.is_out_of_range or s.device_id is not null) as is_valid
    from monitor_readings as r
    left join stuck_keys as s using (device_id, metric, block, value)
)

select * from final
