-- Network heard links (live): which gateways hear each device, and how well, over
-- the reach window (setting reach_window_days before the newest 'heard' report).
-- Network.refresh_reach() snapshots it into the table network_reach.
-- grain: one row per device and gateway heard in the reach window
-- columns: n_heard (reports), rssi_dbm and snr_db (means, dBm and dB), last_heard_at
--   (UTC).
create or replace view network_heard_links as
with settings as (
    select max(value) filter (where name = 'reach_window_days') as reach_window_days
    from network_settings
),

bounds as (
    select max(event_at) - to_seconds(st.reach_window_days * 86400) as since
    from connections
    cross join settings st
    where event = 'heard'
    group by st.reach_window_days
),

heard as (
    select
        c.device_id,
        c.gateway_id,
        count(*) as n_heard,
        avg(c.rssi_dbm) as rssi_dbm,
        avg(c.snr_db) as snr_db,
        max(c.event_at) as last_heard_at
    from connections c
    cross join bounds b
    where c.event = 'heard' and c.rssi_dbm is not null and c.event_at > b.since
    group by c.device_id, c.gateway_id
),

final as (
    select * from heard
)

select * from final
