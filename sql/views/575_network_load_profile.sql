-- Network time-of-day load profile: the typical load and performance of each
-- gateway per UTC hour of the day, over its whole history while up.
-- grain: one row per gateway and UTC hour of day (0..23)
-- columns: n_hours (hours averaged), messages_per_s (mean msg/s), n_connected (mean
--   devices), latency_ms (mean ms), latency_p95_ms (ms), packet_loss_pct (mean, 0..100),
--   cpu_pct (mean, 0..100).
create or replace view network_load_profile as
with final as (
    select
        gateway_id,
        any_value(site) as site,
        hour(hour_at) as hour_of_day,
        count(*) as n_hours,
        avg(messages_per_s) as messages_per_s,
        avg(n_connected) as n_connected,
        avg(latency_ms) as latency_ms,
        quantile_cont(latency_ms, 0.95) as latency_p95_ms,
        avg(packet_loss_pct) as packet_loss_pct,
        avg(cpu_pct) as cpu_pct
    from network_gateway_hourly
    where is_up
    group by gateway_id, hour(hour_at)
)

select * from final
