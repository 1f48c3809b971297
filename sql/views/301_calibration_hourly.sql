-- Primary-metric readings of each sensor by UTC hour, so that sensors
-- reporting at different phase offsets compare hour by hour. The union of
-- readings_history (which is created after this view, sql/views/910): raw
-- readings where kept, the hourly rollup where retention aged them out.
-- grain: one row per sensor and UTC hour with a reading of its primary metric
-- columns: hour_at (UTC hour start), value (mean of the hour, metric unit),
--          n_readings, zone_hour_key (hash of zone, metric and hour: the peer group),
--          is_trusted (a reference whose last check did not fail and that detect() did
--          not doubt (calibration_peer_exclusions), or within the validity of a passed calibration check:
--          the zone's anchor that hour)
create or replace view calibration_hourly as
with history as (
    select device_id, metric, hour_at, value_mean, n_readings from readings_hourly
    union all
    select r.device_id, r.metric, r.hour_at, r.value_mean, r.n_readings
    from readings_hourly_rollup r
    anti join readings_hourly w
        on w.device_id = r.device_id and w.metric = r.metric and w.hour_at = r.hour_at
),

by_hour as (
    select h.device_id, h.hour_at, h.value_mean as value, h.n_readings
    from history h
    semi join calibration_sensors s on s.device_id = h.device_id and s.metric = h.metric
),

final as (
    select
        h.device_id,
        s.metric,
        s.site,
        s.zone,
        s.is_reference,
        coalesce((s.is_anchor and x.device_id is null) or (h.hour_at > s.trusted_from_at
                                    and h.hour_at <= s.trusted_until_at), false) as is_trusted,
        h.hour_at,
        h.value,
        h.n_readings,
        hash(s.zone, s.metric, h.hour_at) as zone_hour_key
    from by_hour h
    join calibration_sensors s on s.device_id = h.device_id
    left join calibration_peer_exclusions x
        on x.device_id = h.device_id and x.verdict = 'doubted_reference'
)

select * from final
