-- Unexpected firmware states in the reports of some ingest batches, one row per report and
-- kind: untargeted (a version change no campaign targeted for the device), downgrade (an
-- untargeted change to an older version), hash_mismatch (a catalog version with another
-- image hash, or the same version as before with another hash), not_in_catalog, unparsable.
-- Parameter $batches: BIGINT[] of ingest batch ids. Reads firmware_versions, which
-- Firmware.check_reports brings up to date first.
with new as (
    select device_id, reported_at, version, image_hash, batch_id
    from firmware_reports
    where list_contains($batches, batch_id)
),
hist as (
    select r.device_id, r.reported_at, r.version, r.image_hash, r.batch_id
    from firmware_reports r
    where r.device_id in (select device_id from new)
),
lagged as (
    select *, lag(version) over w as previous_version, lag(image_hash) over w as previous_hash
    from hist
    window w as (partition by device_id order by reported_at)
),
cur as (
    select l.*, d.manufacturer, d.model,
           v.version_rank, v.parse_error, v.scheme_source, pv.version_rank as previous_rank
    from lagged l
    join devices d on d.device_id = l.device_id
    left join firmware_versions v
        on v.manufacturer = d.manufacturer and v.model = d.model and v.version = l.version
    left join firmware_versions pv
        on pv.manufacturer = d.manufacturer and pv.model = d.model
       and pv.version = l.previous_version
    where list_contains($batches, l.batch_id)
),
releases as (
    select c.device_id, c.reported_at,
           arg_max(r.version, r.version = c.version) as release_version,
           arg_max(r.image_hash, r.version = c.version) as release_hash
    from cur c
    join firmware_catalog r
        on r.manufacturer = c.manufacturer and r.model = c.model
       and (r.version = c.version or r.version_rank = c.version_rank)
    group by all
),
catalogued as (
    select distinct manufacturer, model from firmware_releases
),
targeted as (
    select distinct c.device_id, c.reported_at
    from cur c
    join update_events u on u.device_id = c.device_id and u.event_at <= c.reported_at
    left join firmware_versions tv
        on tv.manufacturer = c.manufacturer and tv.model = c.model
       and tv.version = u.target_version
    where u.target_version = c.version or tv.version_rank = c.version_rank
),
judged as (
    select c.*, r.release_version, r.release_hash, k.model is not null as has_catalog,
           t.device_id is not null as is_targeted,
           c.version_rank is null and c.parse_error is not null
               and c.scheme_source <> 'default' as is_unparsable,
           c.previous_version is not null and case
               when c.version_rank is not null and c.previous_rank is not null
                   then c.version_rank <> c.previous_rank
               else c.version <> c.previous_version end as is_change
    from cur c
    left join releases r on r.device_id = c.device_id and r.reported_at = c.reported_at
    left join catalogued k on k.manufacturer = c.manufacturer and k.model = c.model
    left join targeted t on t.device_id = c.device_id and t.reported_at = c.reported_at
),
events as (
    select *, 'unparsable' as kind, null as expected_hash,
           format('an unparsable firmware version: {}', parse_error) as detail
    from judged where is_unparsable
    union all
    select *, 'not_in_catalog', null,
           format('version {} is not in the catalog of {} {}', version, manufacturer, model)
    from judged where not is_unparsable and has_catalog and release_version is null
    union all
    select *, 'downgrade', null,
           format('downgrade {} -> {} on {} that no campaign targeted', previous_version,
                  version, strftime(reported_at, '%Y-%m-%d %H:%M'))
    from judged
    where not is_unparsable and is_change and not is_targeted
      and version_rank < previous_rank
    union all
    select *, 'untargeted', null,
           format('{} -> {} on {} that no campaign targeted', previous_version, version,
                  strftime(reported_at, '%Y-%m-%d %H:%M'))
    from judged
    where not is_unparsable and is_change and not is_targeted
      and not coalesce(version_rank < previous_rank, false)
    union all
    select *, 'hash_mismatch', coalesce(release_hash, previous_hash),
           format('{} runs image {} where {} was expected', version, image_hash,
                  coalesce(release_hash, previous_hash))
    from judged
    where not is_unparsable and image_hash is not null
      and (image_hash <> release_hash
           or (release_hash is null and not is_change and image_hash <> previous_hash))
),
final as (
    select device_id, kind, version, image_hash, previous_version, expected_hash,
           reported_at, detail, batch_id
    from events
)
select * from final
