-- What each sensor should read, hour by hour, from the best source: a
-- reference instrument in its zone measuring the same metric, else the median
-- of its co-located peers (at least 3 others; the sensor never votes for
-- itself), else nothing ("no expectation"). The shared zone signal cancels in
-- value - expected.
-- grain: one row per sensor and UTC hour with a reading
-- columns: value, expected, reference_value, peer_median (metric unit);
--          n_peers (other sensors of the zone and metric that hour);
--          expected_source ('reference' | 'peers' | null)
create or replace view calibration_expected as
with ranked as (
    select
        *,
        row_number() over (partition by zone, metric, hour_at order by value) as rk,
        count(*) over (partition by zone, metric, hour_at) as n,
        sum(case when is_reference then 1 else 0 end)
            over (partition by zone, metric, hour_at) as n_ref,
        sum(case when is_reference then value else 0 end)
            over (partition by zone, metric, hour_at) as sum_ref
    from calibration_hourly
),

order_stats as (
    -- The values at ranks n//2, n//2 + 1 and n//2 + 2 of the zone-hour: the
    -- median of the others is made of two of them, depending on own rank.
    select
        *,
        max(case when rk = n // 2 then value end)
            over (partition by zone, metric, hour_at) as v1,
        max(case when rk = n // 2 + 1 then value end)
            over (partition by zone, metric, hour_at) as v2,
        max(case when rk = n // 2 + 2 then value end)
            over (partition by zone, metric, hour_at) as v3
    from ranked
),

peers as (
    select
        *,
        n - 1 as n_peers,
        case
            when n < 2 then null
            when n % 2 = 0 then (case when n // 2 < rk then v1 else v2 end)
            else ((case when n // 2 < rk then v1 else v2 end)
                  + (case when n // 2 + 1 < rk then v2 else v3 end)) / 2
        end as peer_median,
        case
            when is_reference and n_ref > 1 then (sum_ref - value) / (n_ref - 1)
            when not is_reference and n_ref > 0 then sum_ref / n_ref
        end as reference_value
    from order_stats
),

final as (
    select
        device_id,
        metric,
        site,
        zone,
        is_reference,
        hour_at,
        value,
        n_readings,
        n_peers,
        peer_median,
        reference_value,
        case
            when reference_value is not null then reference_value
            when n_peers >= 3 then peer_median
        end as expected,
        case
            when reference_value is not null then 'reference'
            when n_peers >= 3 then 'peers'
        end as expected_source
    from peers
)

select * from final
