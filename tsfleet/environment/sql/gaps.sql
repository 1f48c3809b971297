-- Runs of hours without valid monitor data per zone and metric, from
-- _env_zone_long: all hours of one run share their previous and next
-- observed hour. is_filled: the run was interpolated.
-- params: $start, $end (UTC window)
-- grain: one row per zone, metric and gap
with missing as (
    select * from _env_zone_long where is_missing
),

final as (
    select
        zone, metric,
        coalesce(prev_at + interval 1 hour, $start::timestamp) as gap_from,
        coalesce(next_at, $end::timestamp) as gap_to,
        count(*)::integer as hours,
        bool_and(value is not null) as is_filled
    from missing
    group by zone, metric, prev_at, next_at
)

select * from final
