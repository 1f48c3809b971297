-- Network sessions: each attachment of a device to a gateway, from a connect
-- event to the device's next connect or disconnect event.
-- grain: one row per connect event (device, gateway, connected_at)
-- columns: connected_at, ended_at (UTC; ended_at null while the session is open),
--   end_event ('disconnect', 'connect' when the device connected again, null while open),
--   duration_h (hours, null while open).
create or replace view network_sessions as
with events as (
    select device_id, gateway_id, event_at, event
    from connections
    where event in ('connect', 'disconnect')
),

ordered as (
    select
        *,
        lead(event_at) over w as next_at,
        lead(event) over w as next_event
    from events
    window w as (partition by device_id order by event_at, event desc)
),

final as (
    select
        device_id,
        gateway_id,
        event_at as connected_at,
        next_at as ended_at,
        next_event as end_event,
        date_diff('second', event_at, next_at) / 3600.0 as duration_h
    from ordered
    where event = 'connect'
)

select * from final
