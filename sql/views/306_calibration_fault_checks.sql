-- Sensor faults, which are not drift: stuck (the same value for at least 24
-- readings in a row up to the latest, while its expectation moved by at least
-- 1% of scale), dead (silent for at least 72 hours or three reporting
-- intervals before the fleet's latest reading), spikes (at least 3 spike
-- hours, see calibration_spikes) and out_of_range (readings of the primary
-- metric quarantined as physically impossible). Reads sensor_residuals, so
-- stuck and spikes are as of the last detect().
-- grain: one row per sensor and fault kind that holds
-- columns: fault, since_at (UTC), value (readings in the run, hours silent,
--          number of spikes or rejected readings), detail, as_of (UTC)
create or replace view calibration_fault_checks as
with latest as (
    select l.device_id, l.observed_at as last_seen_at
    from device_latest l
    join calibration_sensors s on s.device_id = l.device_id and s.metric = l.metric
),

clock as (
    select max(last_seen_at) as as_of from latest
),

steps as (
    select
        device_id,
        hour_at,
        value,
        expected,
        scale,
        case when value = lag(value) over (partition by device_id order by hour_at)
             then 0 else 1 end as is_new
    from sensor_residuals
),

runs as (
    select *, sum(is_new) over (partition by device_id order by hour_at
                                rows unbounded preceding) as run_id
    from steps
),

last_run as (
    select
        device_id,
        count(*) as n,
        min(hour_at) as started_at,
        any_value(value) as value,
        100 * (max(expected) - min(expected)) / any_value(scale) as expected_range_pct
    from runs
    where (device_id, run_id) in (select device_id, max(run_id) from runs group by device_id)
    group by device_id
),

spikes as (
    select device_id, count(*) as n, min(hour_at) as first_at
    from calibration_spikes
    group by device_id
),

rejected as (
    select
        json_extract_string(q.raw, '$.device_id') as device_id,
        coalesce(a.metric, lower(json_extract_string(q.raw, '$.metric'))) as metric,
        count(*) as n,
        min(q.quarantined_at)::timestamp as first_at
    from quarantine q
    left join metric_aliases a on a.alias = lower(json_extract_string(q.raw, '$.metric'))
    where q.kind = 'readings' and q.reason = 'out_of_range'
    group by all
),

faults as (
    select device_id, 'stuck' as fault, started_at as since_at, n::double as value,
        format('reads {} for {} readings in a row since {}', value, n, started_at) as detail
    from last_run
    where n >= 24 and expected_range_pct >= 1
    union all
    select s.device_id, 'dead', l.last_seen_at,
        date_diff('hour', l.last_seen_at, c.as_of)::double,
        format('no reading for {} hours (last at {})',
               date_diff('hour', l.last_seen_at, c.as_of), l.last_seen_at)
    from calibration_sensors s
    join latest l on l.device_id = s.device_id
    cross join clock c
    where date_diff('hour', l.last_seen_at, c.as_of)
        >= greatest(72, 3 * coalesce(s.reporting_interval_s, 3600) / 3600)
    union all
    select device_id, 'spikes', first_at, n::double,
        format('{} isolated spikes against its expectation since {}', n, first_at)
    from spikes
    where n >= 3
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
