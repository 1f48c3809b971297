-- Network gateway load now: attached devices against capacity per gateway, with
-- the bottleneck flags.
-- grain: one row per gateway
-- columns: n_attached (devices), capacity_devices (devices), utilization (fraction
--   n_attached / capacity_devices), headroom_devices (devices), headroom (fraction,
--   1 - utilization), is_over_capacity (utilization > 1), is_beyond_saturation (from
--   network_saturation), is_bottleneck (active and utilization above the setting
--   overload_utilization, or beyond saturation).
create or replace view network_gateway_load as
with settings as (
    select max(value) filter (where name = 'overload_utilization') as overload_utilization
    from network_settings
),

attached as (
    select gateway_id, count(*) filter (where is_attached) as n_attached
    from network_attachment
    group by gateway_id
),

final as (
    select
        s.gateway_id,
        s.kind,
        s.site,
        s.zone,
        s.status,
        s.is_active,
        coalesce(a.n_attached, 0) as n_attached,
        s.capacity_devices,
        coalesce(a.n_attached, 0) / s.capacity_devices as utilization,
        s.capacity_devices - coalesce(a.n_attached, 0) as headroom_devices,
        1 - coalesce(a.n_attached, 0) / s.capacity_devices as headroom,
        coalesce(a.n_attached, 0) > s.capacity_devices as is_over_capacity,
        coalesce(sat.is_beyond_saturation, false) as is_beyond_saturation,
        s.is_active and (coalesce(a.n_attached, 0) / s.capacity_devices > st.overload_utilization
                         or coalesce(sat.is_beyond_saturation, false)) as is_bottleneck
    from network_gateway_status s
    cross join settings st
    left join attached a using (gateway_id)
    left join network_saturation sat using (gateway_id)
)

select * from final
