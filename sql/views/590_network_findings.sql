-- Network findings: open network problems in the common findings shape read by
-- the alert rules.
-- grain: one row per open finding (finding, subject)
-- columns: domain ('network'), finding (gateway_overloaded | gateway_overload_predicted |
--   gateway_down | single_point_of_failure | device_flapping), subject_kind ('gateway' |
--   'device'), subject_id, site, zone, severity ('info' | 'warning' | 'critical'), value
--   (utilization fraction | days to overload | devices affected | RSSI dBm | connects per
--   day), summary, action ('repair_gateway' | 'inspect_device' | null), due_at and
--   observed_at (UTC).
create or replace view network_findings as
with settings as (
    select max(value) filter (where name = 'forecast_horizon_days') as horizon_days
    from network_settings
),

overloaded as (
    select
        'gateway_overloaded' as finding, 'gateway' as subject_kind, l.gateway_id as subject_id,
        l.site, l.zone,
        case when l.is_over_capacity then 'critical' else 'warning' end as severity,
        l.utilization as value,
        printf('%s carries %d devices for a capacity of %d (%.0f%%)%s', l.gateway_id,
               l.n_attached, l.capacity_devices, 100 * l.utilization,
               case when l.is_beyond_saturation then ', beyond its saturation point'
                    else '' end) as summary,
        null as action, null::timestamp as due_at, s.as_of as observed_at
    from network_gateway_load l
    join network_gateway_status s using (gateway_id)
    where l.is_active and (l.is_over_capacity or l.is_beyond_saturation)
),

predicted as (
    select
        'gateway_overload_predicted', 'gateway', f.gateway_id, l.site, l.zone, 'warning',
        f.days_to_overload,
        printf('%s will pass its capacity of %d devices in %.0f days (+%.2f devices/day)',
               f.gateway_id, f.capacity_devices, f.days_to_overload, f.slope_devices_per_day),
        null, f.overload_at, f.as_of
    from network_overload_forecast f
    join network_gateway_load l using (gateway_id)
    cross join settings st
    where f.status = 'predicted' and f.days_to_overload <= st.horizon_days
        and l.is_active and not l.is_over_capacity and not l.is_beyond_saturation
),

down as (
    select
        'gateway_down', 'gateway', s.gateway_id, s.site, s.zone, 'critical',
        r.n_devices::double,
        printf('%s is down since %s: %d devices affected, %d without another gateway',
               s.gateway_id, strftime(s.down_since, '%Y-%m-%d %H:%M'), r.n_devices,
               r.n_stranded_if_failed),
        'repair_gateway', s.down_since, s.as_of
    from network_gateway_status s
    join network_gateway_redundancy r using (gateway_id)
    where s.status = 'down'
),

spof as (
    select
        'single_point_of_failure', 'device', r.device_id, r.site, r.zone,
        case when d.criticality >= 4 then 'warning' else 'info' end,
        coalesce(case when r.n_alternatives = 0 then r.own_rssi_dbm end,
                 r.best_alternative_rssi_dbm),
        printf('%s can reach only %s', r.device_id,
               case when r.n_alternatives = 0 then r.gateway_id
                    else r.best_alternative_gateway_id end),
        null, null::timestamp, a.as_of
    from network_device_redundancy r
    join network_attachment a using (device_id)
    left join devices d using (device_id)
    where r.is_single_point_of_failure
),

flapping as (
    select
        'device_flapping', 'device', c.device_id, c.site, c.zone, 'warning',
        c.connects_per_day,
        printf('%s reconnected %d times in %.0f days (%.1f per day)', c.device_id,
               c.n_connects, c.window_days, c.connects_per_day),
        'inspect_device', null::timestamp, a.as_of
    from network_device_churn c
    join network_attachment a using (device_id)
    where c.is_flapping
),

unioned as (
    select * from overloaded
    union all select * from predicted
    union all select * from down
    union all select * from spof
    union all select * from flapping
),

final as (
    select
        'network' as domain,
        finding::varchar as finding,
        subject_kind::varchar as subject_kind,
        subject_id::varchar as subject_id,
        site::varchar as site,
        zone::varchar as zone,
        severity::varchar as severity,
        value::double as value,
        summary::varchar as summary,
        action::varchar as action,
        due_at::timestamp as due_at,
        observed_at::timestamp as observed_at
    from unioned
)

select * from final
