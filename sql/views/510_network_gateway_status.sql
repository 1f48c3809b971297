-- Network gateway status: whether each gateway is up, down, removed or not yet
-- installed, from its statistics reports and its commissioning dates.
-- grain: one row per gateway
-- columns: status ('up' | 'down' | 'removed' | 'not_installed' | 'unknown' when it never
--   reported), is_active (up or unknown: it can take devices), last_stats_at, last_up_at,
--   down_since, as_of (UTC), hours_silent (hours since its last report, at as_of).
create or replace view network_gateway_status as
with settings as (
    select max(value) filter (where name = 'down_after_hours') as down_after_hours
    from network_settings
),

stats as (
    select
        gateway_id,
        max(observed_at) as last_stats_at,
        arg_max(is_up, observed_at) as is_up_last,
        max(observed_at) filter (where is_up) as last_up_at
    from gateway_stats
    group by gateway_id
),

first_down as (
    select s.gateway_id, min(g.observed_at) as first_down_at
    from stats s
    join gateway_stats g
        on g.gateway_id = s.gateway_id
        and not g.is_up
        and g.observed_at > coalesce(s.last_up_at, '-infinity'::timestamp)
    group by s.gateway_id
),

as_of as (
    select coalesce((select max(observed_at) from gateway_stats),
                    (select max(event_at) from connections)) as as_of
),

classified as (
    select
        g.gateway_id,
        g.kind,
        g.site,
        g.zone,
        g.capacity_devices,
        g.installed_at,
        g.removed_at,
        s.last_stats_at,
        s.last_up_at,
        a.as_of,
        date_diff('second', s.last_stats_at, a.as_of) / 3600.0 as hours_silent,
        case
            when g.removed_at is not null and g.removed_at <= a.as_of then 'removed'
            when g.installed_at is not null and g.installed_at > a.as_of then 'not_installed'
            when s.gateway_id is null then 'unknown'
            when not s.is_up_last then 'down'
            when date_diff('second', s.last_stats_at, a.as_of) / 3600.0
                 > st.down_after_hours then 'down'
            else 'up'
        end as status,
        coalesce(f.first_down_at, s.last_up_at) as down_candidate_at
    from gateways g
    cross join as_of a
    cross join settings st
    left join stats s using (gateway_id)
    left join first_down f using (gateway_id)
),

final as (
    select
        gateway_id, kind, site, zone, capacity_devices, installed_at, removed_at,
        status,
        status in ('up', 'unknown') as is_active,
        last_stats_at,
        last_up_at,
        case when status = 'down' then down_candidate_at end as down_since,
        hours_silent,
        as_of
    from classified
)

select * from final
