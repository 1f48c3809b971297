-- Network gateway performance per hour: statistics reports bucketed by UTC hour,
-- with the load against capacity.
-- grain: one row per gateway and UTC hour with at least one report
-- columns: hour_at (UTC), is_up (every report up), cpu_pct and memory_pct (0..100),
--   latency_ms (ms), packet_loss_pct (0..100), messages_per_s (msg/s), n_connected
--   (devices), utilization (fraction n_connected / capacity_devices).
create or replace view network_gateway_hourly as
with final as (
    select
        s.gateway_id,
        g.site,
        date_trunc('hour', s.observed_at) as hour_at,
        bool_and(s.is_up) as is_up,
        avg(s.cpu_pct) as cpu_pct,
        avg(s.memory_pct) as memory_pct,
        avg(s.latency_ms) as latency_ms,
        avg(s.packet_loss_pct) as packet_loss_pct,
        avg(s.messages_per_s) as messages_per_s,
        avg(s.n_connected) as n_connected,
        avg(s.n_connected) / any_value(g.capacity_devices) as utilization
    from gateway_stats s
    left join gateways g using (gateway_id)
    group by s.gateway_id, g.site, date_trunc('hour', s.observed_at)
)

select * from final
