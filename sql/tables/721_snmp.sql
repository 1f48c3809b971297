-- SNMP polling of gateways and access points (tsfleet snmp-poll, serve --snmp-targets):
-- uptime and IF-MIB interface counter deltas on gateway_stats, and the raw counters of
-- each agent's previous poll, from which the next poll computes those deltas.

alter table gateway_stats add column uptime_s double;
alter table gateway_stats add column n_in_octets bigint;
alter table gateway_stats add column n_out_octets bigint;
alter table gateway_stats add column n_in_errors bigint;
alter table gateway_stats add column n_out_errors bigint;

create table snmp_counters (
    gateway_id   varchar not null,
    counter      varchar not null,
    value        hugeint not null,
    bits         integer not null,
    uptime_cs    bigint,
    observed_at  timestamp not null,
    primary key (gateway_id, counter)
);
comment on table snmp_counters is 'Grain: one row per SNMP agent and raw counter, the value of its latest poll (counter if.<ifIndex>.in_octets|out_octets|in_errors|out_errors, cpu.busy|cpu.total from UCD-SNMP ssCpuRaw*; bits 32 or 64, the width at which it wraps; uptime_cs the agent''s sysUpTime in centiseconds, a lower one means the agent restarted and its counters with it). The next poll''s gateway_stats deltas are computed from these.';

comment on table gateway_stats is 'Grain: one row per gateway and observation. cpu_pct and memory_pct 0..100; latency_ms mean round trip; packet_loss_pct 0..100; messages_per_s mean rate since the previous observation; n_rx_* and n_tx_* LoRaWAN gateway bridge packet counters of the interval; uptime_s the agent''s sysUpTime in seconds (SNMP); n_in_octets, n_out_octets, n_in_errors, n_out_errors the IF-MIB counters'' increase since the previous SNMP poll summed over the non-loopback interfaces (counter wraps handled; null on the first poll and after an agent restart).';
