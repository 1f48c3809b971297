-- The current firmware state of the devices that have reports in the given ingest batches,
-- recomputed from their whole report history (late reports land in the right place).
-- Parameter $batches: BIGINT[] of ingest batch ids; $now: the update time.
with devs as (
    select distinct device_id from firmware_reports where list_contains($batches, batch_id)
),
hist as (
    select device_id, reported_at, version, image_hash
    from firmware_reports
    where device_id in (select device_id from devs)
),
latest as (
    select device_id,
           max(reported_at) as reported_at,
           arg_max(version, reported_at) as version,
           arg_max(image_hash, reported_at) as image_hash,
           count(*) as n_reports
    from hist
    group by device_id
),
last_other as (
    select h.device_id, max(h.reported_at) as last_other_at
    from hist h
    join latest l on l.device_id = h.device_id and h.version <> l.version
    group by h.device_id
),
since as (
    select h.device_id, min(h.reported_at) as on_version_since
    from hist h
    join latest l on l.device_id = h.device_id and h.version = l.version
    left join last_other o on o.device_id = h.device_id
    where o.last_other_at is null or h.reported_at > o.last_other_at
    group by h.device_id
),
final as (
    select l.device_id, l.version, l.image_hash, l.reported_at, s.on_version_since,
           l.n_reports, $now::timestamp as updated_at
    from latest l
    join since s on s.device_id = l.device_id
)
select * from final
