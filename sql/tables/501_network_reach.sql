-- Network reach snapshot: the per device and gateway aggregate of heard reports,
-- taken by Network.refresh_reach() (a result table: computed_at UTC, params JSON).

create table network_reach (
    device_id      varchar not null,
    gateway_id     varchar not null,
    n_heard        integer not null,
    rssi_dbm       double,
    snr_db         double,
    last_heard_at  timestamp,
    computed_at    timestamp not null,
    params         varchar not null
);
comment on table network_reach is 'Grain: one row per device and gateway heard in the reach window. A snapshot of the view network_heard_links (mean RSSI dBm, mean SNR dB, last_heard_at UTC) taken by Network.refresh_reach() and analyze(): it aggregates every heard report, so the redundancy views and the plan read this snapshot instead of recomputing it.';
