-- The residuals detect() tested, for SQL readers: calibration_residuals
-- under the peer exclusions detect() last stored (calibration_peer_exclusions).
-- detect() itself computes the same numbers on a numpy grid (a test checks they
-- agree) and does not store them hour by hour.
-- grain: one row per sensor and UTC hour of its current calibration period with an expectation
-- columns: value, expected, scale (metric unit), n_peers, residual_pct (% of scale)
create or replace view sensor_residuals as
with final as (
    select
        device_id, metric, site, zone, hour_at, value, expected, expected_source,
        n_peers, scale, residual_pct
    from calibration_residuals
)

select * from final
