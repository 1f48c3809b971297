-- Each device's firmware judged against the catalog and the OSV advisories.
-- grain: one row per device in devices
-- columns: version_rank (order within the model); release_status of the running release;
--   target_version: newest 'target' release compatible with the device's hardware revision;
--   ranks_behind (count of known versions between current and target);
--   is_outdated (behind its target), is_unknown (version not in the
--   catalog of a model that has one),
--   is_incompatible (running release not allowed for the hardware revision),
--   is_revoked, is_vulnerable; advisories (comma-separated OSV ids);
--   max_severity (CRITICAL | HIGH | MODERATE | LOW | UNKNOWN); max_score (CVSS, where given)
create view firmware_device_status as
with cur as (
    select c.*, v.version_rank, v.scheme, v.parse_error
    from firmware_current c
    left join firmware_versions v
        on v.manufacturer = c.manufacturer and v.model = c.model and v.version = c.version
),
running as (
    select c.device_id,
           arg_max(r.status, r.version = c.version) as release_status,
           arg_max(r.hardware_revs, r.version = c.version) as release_hardware_revs,
           arg_max(r.image_hash, r.version = c.version) as release_hash
    from cur c
    join firmware_catalog r
        on r.manufacturer = c.manufacturer and r.model = c.model
       and (r.version = c.version or r.version_rank = c.version_rank)
    group by c.device_id
),
targets as (
    select c.device_id,
           max(r.version_rank) as target_rank,
           arg_max(r.version, r.version_rank) as target_version
    from cur c
    join firmware_catalog r
        on r.manufacturer = c.manufacturer and r.model = c.model and r.status = 'target'
       and (coalesce(trim(r.hardware_revs), '') = ''
            or list_contains(string_split(replace(r.hardware_revs, ' ', ''), ','), c.hardware_rev))
    group by c.device_id
),
catalogued as (
    select distinct manufacturer, model from firmware_releases
),
vulns as (
    select c.device_id,
           count(*) as n_advisories,
           string_agg(w.advisory_id, ', ' order by w.advisory_id) as advisories,
           arg_max(w.severity, case w.severity when 'CRITICAL' then 4 when 'HIGH' then 3
                   when 'MODERATE' then 2 when 'LOW' then 1 else 0 end) as max_severity,
           max(w.score) as max_score
    from cur c
    join firmware_vulnerable_versions w
        on w.manufacturer = c.manufacturer and w.model = c.model and w.version = c.version
    group by c.device_id
),
final as (
    select c.device_id, c.manufacturer, c.model, c.hardware_rev, c.site, c.zone,
           c.version, c.image_hash, c.reported_at, c.on_version_since, c.days_on_version,
           c.version_rank, c.scheme, c.parse_error,
           r.release_status, r.release_hash,
           t.target_version, t.target_rank,
           t.target_rank - c.version_rank as ranks_behind,
           coalesce(c.version_rank < t.target_rank, false) as is_outdated,
           c.version is not null and r.device_id is null and k.model is not null as is_unknown,
           coalesce(r.device_id is not null
                    and coalesce(trim(r.release_hardware_revs), '') <> ''
                    and not list_contains(string_split(replace(r.release_hardware_revs, ' ', ''),
                                                       ','), c.hardware_rev), false)
               as is_incompatible,
           coalesce(r.release_status = 'revoked', false) as is_revoked,
           coalesce(v.n_advisories, 0) > 0 as is_vulnerable,
           coalesce(v.n_advisories, 0) as n_advisories,
           v.advisories, v.max_severity, v.max_score
    from cur c
    left join running r on r.device_id = c.device_id
    left join targets t on t.device_id = c.device_id
    left join vulns v on v.device_id = c.device_id
    left join catalogued k on k.manufacturer = c.manufacturer and k.model = c.model
)
select * from final
