-- Point-in-time outliers (the SQL form of the rule tsfleet/calibration/faults.py
-- applies to detect()'s residual grid; a test checks they agree): hours where
-- a sensor's residual against its expectation jumps away from both neighbouring
-- hours while those agree with each other (a spike, not a step). robust_z is the jump over the
-- sensor's own robust jump scale (1.4826 x median absolute jump, at least
-- 0.05% of scale); a spike needs |robust_z| >= 8 and a jump of at least 5%.
-- grain: one row per sensor and UTC hour that is a spike
-- columns: value, expected (metric unit), residual_pct and jump_pct (% of scale),
--          robust_z (dimensionless)
create or replace view calibration_spikes as
with neighbours as (
    select
        device_id,
        metric,
        site,
        zone,
        hour_at,
        value,
        expected,
        residual_pct,
        lag(residual_pct) over (partition by device_id order by hour_at) as prev_pct,
        lead(residual_pct) over (partition by device_id order by hour_at) as next_pct
    from calibration_residuals
),

jumps as (
    select
        *,
        residual_pct - (prev_pct + next_pct) / 2 as jump_pct
    from neighbours
    where prev_pct is not null and next_pct is not null
),

spread as (
    select device_id, greatest(1.4826 * median(abs(jump_pct)), 0.05) as jump_scale
    from jumps
    group by device_id
),

final as (
    select
        j.device_id,
        j.metric,
        j.site,
        j.zone,
        j.hour_at,
        j.value,
        j.expected,
        j.residual_pct,
        j.jump_pct,
        j.jump_pct / s.jump_scale as robust_z
    from jumps j
    join spread s on s.device_id = j.device_id
    where abs(j.jump_pct) >= 8 * s.jump_scale
        and abs(j.jump_pct) >= 5
        and abs(j.prev_pct - j.next_pct) < abs(j.jump_pct) / 2
)

select * from final
