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
with hourly as materialized (
    select * from calibration_hourly
),

ranked as (
    -- Own rank in the zone-hour, group size and the reference instruments' sum.
    select
        *,
        row_number() over w as rk,
        count(*) over w as n,
        sum(case when is_reference then 1 else 0 end) over w as n_ref,
        sum(case when is_reference then value else 0 end) over w as sum_ref
    from hourly
    window w as (partition by zone_hour_key order by value
                 rows between unbounded preceding and unbounded following)
),

order_stats as (
    -- The values at ranks n//2, n//2 + 1 and n//2 + 2 of each zone-hour: the
    -- median of the others is made of two of them, depending on own rank.
    select
        zone_hour_key,
        max(case when rk = n // 2 then value end) as v1,
        max(case when rk = n // 2 + 1 then value end) as v2,
        max(case when rk = n // 2 + 2 then value end) as v3
    from ranked
    group by zone_hour_key
),

peers as (
    select
        r.*,
        r.n - 1 as n_peers,
        case
            when r.n < 2 then null
            when r.n % 2 = 0 then (case when r.n // 2 < r.rk then o.v1 else o.v2 end)
            else ((case when r.n // 2 < r.rk then o.v1 else o.v2 end)
                  + (case when r.n // 2 + 1 < r.rk then o.v2 else o.v3 end)) / 2
        end as peer_median,
        case
            when r.is_reference and r.n_ref > 1 then (r.sum_ref - r.value) / (r.n_ref - 1)
            when not r.is_reference and r.n_ref > 0 then r.sum_ref / r.n_ref
        end as reference_value
    from ranked r
    join order_stats o on o.zone_hour_key = r.zone_hour_key
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
