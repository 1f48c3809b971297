-- Network links: the reach snapshot (network_reach) with the usable flag, which
-- follows the current RSSI floor setting and gateway status.
-- grain: one row per device and gateway heard in the reach window
-- columns: n_heard (reports), rssi_dbm and snr_db (means, dBm and dB), last_heard_at
--   (UTC), is_usable (mean RSSI at or above the setting rssi_floor_dbm and the gateway
--   is active), computed_at (UTC, when the snapshot was taken).
create or replace view network_links as
with settings as (
    select max(value) filter (where name = 'rssi_floor_dbm') as rssi_floor_dbm
    from network_settings
),

final as (
    select
        r.device_id,
        r.gateway_id,
        r.n_heard,
        r.rssi_dbm,
        r.snr_db,
        r.last_heard_at,
        coalesce(s.is_active, false) and r.rssi_dbm >= st.rssi_floor_dbm as is_usable,
        r.computed_at
    from network_reach r
    cross join settings st
    left join network_gateway_status s using (gateway_id)
)

select * from final
