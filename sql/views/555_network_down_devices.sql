-- Network down gateways and their devices: each device whose gateway is down,
-- with its failover target.
-- grain: one row per device whose current or last gateway is down
-- columns: down_since (UTC), is_attached (still shown as attached), failover_gateway_id
--   (strongest usable alternative), failover_rssi_dbm (dBm), is_stranded (no alternative).
create or replace view network_down_devices as
with final as (
    select
        s.gateway_id,
        s.site,
        s.down_since,
        r.device_id,
        r.zone,
        r.is_attached,
        r.best_alternative_gateway_id as failover_gateway_id,
        r.best_alternative_rssi_dbm as failover_rssi_dbm,
        r.best_alternative_gateway_id is null as is_stranded
    from network_gateway_status s
    join network_device_redundancy r using (gateway_id)
    where s.status = 'down'
)

select * from final
