-- What each sensor should read, hour by hour, from the best source: a
-- trusted anchor in its zone measuring the same metric (a reference
-- instrument, or a sensor within the validity of a passed calibration check:
-- the mean of the anchors; an anchor itself is judged only against the other
-- anchors, never against its peers), else the median of its co-located peers
-- (at least 1 other; the sensor never votes for itself; sensors in
-- calibration_peer_exclusions do not vote at all), else nothing ("no
-- expectation"). The shared zone signal cancels in value - expected.
-- grain: one row per sensor and UTC hour with a reading
-- columns: value, expected, reference_value, peer_median (metric unit);
--          n_peers (other sensors of the zone and metric that hour);
--          expected_source ('reference' | 'peers' | null)
create or replace view calibration_expected as
with hourly as materialized (
    select h.*, (x.device_id is not null) as is_excluded
    from calibration_hourly h
    left join calibration_peer_exclusions x on x.device_id = h.device_id
),

ranked as (
    -- Own rank among the zone-hour's sensors of the same class (consensus
    -- members, or sensors excluded from the consensus) and that class's size.
    select
        *,
        row_number() over w as rk,
        count(*) over w as n_class
    from hourly
    window w as (partition by zone_hour_key, is_excluded order by value
                 rows between unbounded preceding and unbounded following)
),

order_stats as (
    -- Per zone-hour: the consensus members' values at ranks n//2, n//2 + 1 and
    -- n//2 + 2 (the median of the others is made of two of them, depending on
    -- own rank) and the reference instruments' count and sum.
    select
        zone_hour_key,
        count(*) filter (where not is_excluded) as n_ok,
        max(value) filter (where not is_excluded and rk = n_class // 2) as v1,
        max(value) filter (where not is_excluded and rk = n_class // 2 + 1) as v2,
        max(value) filter (where not is_excluded and rk = n_class // 2 + 2) as v3,
        count(*) filter (where is_trusted) as n_ref,
        coalesce(sum(value) filter (where is_trusted), 0) as sum_ref
    from ranked
    group by zone_hour_key
),

peers as (
    select
        r.*,
        o.n_ok - (case when r.is_excluded then 0 else 1 end) as n_peers,
        case
            when r.is_excluded and o.n_ok % 2 = 1 then o.v2
            when r.is_excluded and o.n_ok > 0 then (o.v1 + o.v2) / 2
            when r.is_excluded then null
            when o.n_ok < 2 then null
            when o.n_ok % 2 = 0 then (case when o.n_ok // 2 < r.rk then o.v1 else o.v2 end)
            else ((case when o.n_ok // 2 < r.rk then o.v1 else o.v2 end)
                  + (case when o.n_ok // 2 + 1 < r.rk then o.v2 else o.v3 end)) / 2
        end as peer_median,
        case
            when r.is_trusted and o.n_ref > 1 then (o.sum_ref - r.value) / (o.n_ref - 1)
            when not r.is_trusted and o.n_ref > 0 then o.sum_ref / o.n_ref
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
        is_trusted,
        case
            when reference_value is not null then reference_value
            when not is_trusted and n_peers >= 1 then peer_median
        end as expected,
        case
            when reference_value is not null then 'reference'
            when not is_trusted and n_peers >= 1 then 'peers'
        end as expected_source
    from peers
)

select * from final
