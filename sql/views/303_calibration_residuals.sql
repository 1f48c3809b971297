-- Residuals of the current calibration period: reading minus expected, in
-- percent of the sensor's scale (mean absolute expected value of its zone and
-- metric, at least the metric's min_scale). Hours before (and the hour of) the
-- last calibration are left out: they do not count against the new one.
-- grain: one row per sensor and UTC hour with an expectation, since the last calibration
-- columns: value, expected (metric unit), scale (metric unit), residual_pct (% of scale)
create or replace view calibration_residuals as
with expected as (
    select * from calibration_expected where expected is not null
),

zone_scale as (
    select zone, metric, avg(abs(expected)) as mean_abs_expected
    from expected
    group by zone, metric
),

scaled as (
    select
        e.device_id,
        e.metric,
        e.site,
        e.zone,
        e.hour_at,
        e.value,
        e.expected,
        e.expected_source,
        e.n_peers,
        s.last_calibrated_at,
        greatest(z.mean_abs_expected, coalesce(s.min_scale, 0)) as scale
    from expected e
    join zone_scale z on z.zone = e.zone and z.metric = e.metric
    join calibration_sensors s on s.device_id = e.device_id
    where s.last_calibrated_at is null
        or e.hour_at >= date_trunc('hour', s.last_calibrated_at) + interval 1 hour
),

final as (
    select
        *,
        100 * (value - expected) / scale as residual_pct
    from scaled
    where scale > 0
)

select * from final
