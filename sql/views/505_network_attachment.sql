-- Network attachment now: where each device is attached, from its latest
-- connect or disconnect event.
-- grain: one row per device with connection events
-- columns: gateway_id (the gateway of the latest connect), is_attached (the latest
--   event is a connect), attached_since and last_event_at (UTC), as_of (UTC, newest
--   connect/disconnect event of the fleet); site and zone from devices.
create or replace view network_attachment as
with last_event as (
    select
        device_id,
        arg_max({'gateway_id': gateway_id, 'event': event, 'event_at': event_at},
                epoch_us(event_at) * 2 + (event = 'connect')::int) as e,
        max(event_at) filter (where event = 'connect') as attached_since
    from connections
    where event in ('connect', 'disconnect')
    group by device_id
),

as_of as (
    select max(event_at) as as_of from connections where event in ('connect', 'disconnect')
),

final as (
    select
        l.device_id,
        d.site,
        d.zone,
        l.e.gateway_id as gateway_id,
        l.e.event = 'connect' as is_attached,
        l.attached_since,
        l.e.event_at as last_event_at,
        a.as_of
    from last_event l
    cross join as_of a
    left join devices d using (device_id)
)

select * from final
