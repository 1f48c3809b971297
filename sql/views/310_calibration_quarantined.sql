-- Readings of the sensors' primary metrics that ingest kept in quarantine,
-- by reason: why a sensor has fewer readings than it sent (unknown_metric:
-- the metric is not declared; declare it with the ingest kind "metrics" or
-- fleet.metrics.add() and the readings are re-ingested).
-- grain: one row per sensor and quarantine reason
-- columns: reason (quarantine code), n_readings (rejected rows),
--          first_at / last_at (UTC: when they were quarantined)
create or replace view calibration_quarantined as
with rejected as (
    select
        json_extract_string(q.raw, '$.device_id') as device_id,
        coalesce(a.metric, lower(json_extract_string(q.raw, '$.metric'))) as metric,
        q.reason,
        q.quarantined_at
    from quarantine q
    left join metric_aliases a on a.alias = lower(json_extract_string(q.raw, '$.metric'))
    where q.kind = 'readings'
),

final as (
    select
        s.device_id,
        s.metric,
        s.zone,
        r.reason,
        count(*) as n_readings,
        min(r.quarantined_at)::timestamp as first_at,
        max(r.quarantined_at)::timestamp as last_at
    from rejected r
    join calibration_sensors s on s.device_id = r.device_id and s.metric = r.metric
    group by all
)

select * from final
