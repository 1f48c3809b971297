-- The firmware catalog: releases per model with their place in the model's version order.
-- grain: one row per release (manufacturer, model, version)
-- columns: status (target | approved | deprecated | revoked); hardware_revs (comma-separated
--   compatible revisions, null or empty: all); version_rank (1 = oldest known version of the
--   model, null until Firmware.analyze or check_reports ran, or when unparsable); scheme
create view firmware_catalog as
with releases as (
    select manufacturer, model, version, status, released_at, hardware_revs, image_hash
    from firmware_releases
),
final as (
    select r.*, v.version_rank, v.scheme, v.parse_error
    from releases r
    left join firmware_versions v
        on v.manufacturer = r.manufacturer and v.model = r.model and v.version = r.version
)
select * from final
