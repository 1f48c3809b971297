-- The radio link of each LoRaWAN device as its network server reported it: frame
-- counters give the uplinks lost on the way (a counter lower than the previous
-- uplink's starts a new run: a reset or a rejoin), rxInfo the gateways that hear it.
-- grain: one row per device in lorawan_uplinks
-- columns: n_uplinks count, n_expected count (sum over counter runs of last - first + 1),
--          n_lost count, packet_loss_pct percent (n_lost / n_expected), n_resets count,
--          mean_gateways count (receiving gateways per uplink), downlink_gateway_id
--          (of the newest uplink), first_uplink_at / last_uplink_at timestamp (UTC),
--          device_name, device_profile_name, is_mains boolean
create view lorawan_device_link as
with uplinks as (
    select
        device_id,
        uplink_at,
        f_cnt,
        n_gateways,
        downlink_gateway_id,
        coalesce(f_cnt < lag(f_cnt) over w, false) as is_reset
    from lorawan_uplinks
    window w as (partition by device_id order by uplink_at, f_cnt)
),

runs as (
    select
        *,
        sum(is_reset::integer) over (
            partition by device_id order by uplink_at, f_cnt
            rows between unbounded preceding and current row
        ) as run_id
    from uplinks
),

per_run as (
    select
        device_id,
        run_id,
        max(f_cnt) - min(f_cnt) + 1 as n_expected,
        count(distinct f_cnt) as n_received
    from runs
    group by device_id, run_id
),

per_device as (
    select
        device_id,
        count(*) as n_uplinks,
        sum(is_reset::integer) as n_resets,
        avg(n_gateways) as mean_gateways,
        arg_max(downlink_gateway_id, uplink_at) as downlink_gateway_id,
        min(uplink_at) as first_uplink_at,
        max(uplink_at) as last_uplink_at
    from runs
    group by device_id
),

losses as (
    select
        device_id,
        sum(n_expected) as n_expected,
        sum(n_expected - n_received) as n_lost
    from per_run
    group by device_id
),

final as (
    select
        d.device_id,
        d.n_uplinks,
        l.n_expected,
        l.n_lost,
        100.0 * l.n_lost / l.n_expected as packet_loss_pct,
        d.n_resets,
        d.mean_gateways,
        d.downlink_gateway_id,
        d.first_uplink_at,
        d.last_uplink_at,
        ld.device_name,
        ld.device_profile_name,
        ld.is_mains
    from per_device as d
    inner join losses as l using (device_id)
    left join lorawan_devices as ld using (device_id)
)

select * from final
