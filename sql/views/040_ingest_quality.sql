-- What ingest rejected, by kind, source and reason.
-- grain: one row per kind, source and quarantine reason
-- columns: n_rows (rows quarantined), first_at and last_at (UTC, when quarantined),
--          example_detail (one message of that reason)
create or replace view ingest_quality as
with final as (
    select
        kind,
        source,
        reason,
        count(*) as n_rows,
        cast(min(quarantined_at) as timestamp) as first_at,
        cast(max(quarantined_at) as timestamp) as last_at,
        any_value(detail) as example_detail
    from quarantine
    group by kind, source, reason
)

select * from final
