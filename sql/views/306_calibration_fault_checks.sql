-- Sensor faults seen without the residual grid, which are not drift: dead
-- (silent for at least 72 hours or three reporting intervals before the
-- fleet's latest reading) and out_of_range (readings of the primary metric
-- quarantined as physically impossible). detect() adds stuck and spikes from
-- its residual grid (tsfleet/calibration/faults.py; spikes as in
-- calibration_spikes).
-- grain: one row per sensor and fault kind that holds
-- columns: fault, since_at (UTC), value (hours silent or rejected readings),
--          detail, as_of (UTC)
create or replace view calibration_fault_checks as
with latest as (
    select l.device_id, l.observed_at as last_seen_at
    from device_latest l
    join calibration_sensors s on s.device_id = l.device_id and s.metric = l.metric
),

clock as (
    select max(last_seen_at) as as_of from latest
),

rejected as (
    select
        json_extract_string(q.raw, '$.device_id') as device_id,
        coalesce(a.metric, lower(json_extract_string(q.raw, '$.metric'))) as metric,
        count(*) as n,
        -- the first rejected reading's own time (ISO or Unix seconds, as ingest reads it);
        -- the time it was quarantined only where the raw row holds none
        coalesce(min(case
            when regexp_full_match(json_extract_string(q.raw, '$.observed_at'),
                                   '-?[0-9]+(\.[0-9]+)?')
            then to_timestamp(case when abs(try_cast(json_extract_string(q.raw, '$.observed_at')
                                                     as double)) < 1e12
                                   then try_cast(json_extract_string(q.raw, '$.observed_at')
                                                 as double) end)::timestamp
            else try_cast(try_cast(json_extract_string(q.raw, '$.observed_at') as timestamptz)
                          as timestamp) end),
            min(q.quarantined_at)::timestamp) as first_at
    from quarantine q
    left join metric_aliases a on a.alias = lower(json_extract_string(q.raw, '$.metric'))
    where q.kind = 'readings' and q.reason = 'out_of_range'
    group by all
),

faults as (
    select s.device_id, 'dead' as fault, l.last_seen_at as since_at,
        date_diff('hour', l.last_seen_at, c.as_of)::double as value,
        format('no reading for {} hours (last at {})',
               date_diff('hour', l.last_seen_at, c.as_of), l.last_seen_at) as detail
    from calibration_sensors s
    join latest l on l.device_id = s.device_id
    cross join clock c
    where date_diff('hour', l.last_seen_at, c.as_of)
        >= greatest(72, 3 * coalesce(s.reporting_interval_s, 3600) / 3600)
    union all
    select s.device_id, 'out_of_range', x.first_at, x.n::double,
        format('{} readings of {} outside the physical range were rejected', x.n, s.metric)
    from calibration_sensors s join rejected x on x.device_id = s.device_id and x.metric = s.metric
),

final as (
    select
        f.device_id,
        s.metric,
        s.site,
        s.zone,
        f.fault,
        f.since_at,
        f.value,
        f.detail,
        c.as_of
    from faults f
    join calibration_sensors s on s.device_id = f.device_id
    cross join clock c
)

select * from final
