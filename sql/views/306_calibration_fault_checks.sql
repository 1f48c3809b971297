-- Sensor faults, which are not drift: stuck (the same value for at least 24
-- readings in a row, up to the latest), dead (silent for at least 72 hours or
-- three reporting intervals before the fleet's latest reading), spikes (at
-- least 3 spike hours, see calibration_spikes) and out_of_range (readings of
-- the primary metric quarantined as physically impossible).
-- grain: one row per sensor and fault kind that holds
-- columns: fault, since_at (UTC), value (readings in the run, hours silent,
--          number of spikes or rejected readings), detail
create or replace view calibration_fault_checks as
with hourly as (
    select
        device_id,
        hour_at,
        value,
        lag(value) over (partition by device_id order by hour_at) as prev_value
    from calibration_hourly
),

runs as (
    select
        *,
        sum(case when value = prev_value then 0 else 1 end)
            over (partition by device_id order by hour_at rows unbounded preceding) as run_id
    from hourly
),

last_run as (
    select device_id, run_id, count(*) as n, min(hour_at) as started_at, any_value(value) as value
    from runs
    where (device_id, run_id) in (select device_id, max(run_id) from runs group by device_id)
    group by device_id, run_id
),

seen as (
    select
        device_id,
        max(hour_at) as last_seen_at,
        (select max(hour_at) from calibration_hourly) as as_of
    from calibration_hourly
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
    select s.device_id, 'stuck' as fault, r.started_at as since_at, r.n::double as value,
        format('reads {} for {} readings in a row since {}', r.value, r.n, r.started_at) as detail
    from calibration_sensors s join last_run r on r.device_id = s.device_id
    where r.n >= 24
    union all
    select s.device_id, 'dead', w.last_seen_at,
        date_diff('hour', w.last_seen_at, w.as_of)::double,
        format('no reading for {} hours (last at {})',
               date_diff('hour', w.last_seen_at, w.as_of), w.last_seen_at)
    from calibration_sensors s join seen w on w.device_id = s.device_id
    where date_diff('hour', w.last_seen_at, w.as_of)
        >= greatest(72, 3 * coalesce(s.reporting_interval_s, 3600) / 3600)
    union all
    select s.device_id, 'spikes', p.first_at, p.n::double,
        format('{} isolated spikes against its expectation since {}', p.n, p.first_at)
    from calibration_sensors s join spikes p on p.device_id = s.device_id
    where p.n >= 3
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
        (select max(hour_at) from calibration_hourly) as as_of
    from faults f
    join calibration_sensors s on s.device_id = f.device_id
)

select * from final
