-- Exposure cells for the failure and reboot models: device-hours and event
-- counts grouped by device type, age band and binned environment (1 degC,
-- 5 %RH, 0.1 g, 2 degC of daily swing), with the exposure-weighted mean of
-- each covariate inside the cell. Devices in one zone share its environment,
-- so device-hours are zone-hours times the zone's device count.
-- params: $start, $end (UTC window)
-- grain: one row per device type, age band and environment bin
with zone_hours as (
    select
        zone, hour_at, temperature_c, humidity_pct, vibration_g, daily_swing_c,
        -- bins of values rounded to 1e-6: sums in another order (a parallel
        -- aggregate, a rerun after retention) must not move a value across an edge
        floor(round(temperature_c, 6)) as tb, floor(round(humidity_pct, 6) / 5) as hb,
        floor(round(vibration_g, 6) / 0.1) as vb, floor(round(daily_swing_c, 6) / 2) as sb
    from environment_zone_hourly
    where temperature_c is not null and humidity_pct is not null
      and vibration_g is not null and daily_swing_c is not null
),

zone_cells as (
    select zone, tb, hb, vb, sb, count(*) as hours,
           sum(temperature_c) as st, sum(humidity_pct) as sh,
           sum(vibration_g) as sv, sum(daily_swing_c) as ss
    from zone_hours
    group by all
),

devs as (
    select
        device_id, device_type, zone,
        date_diff('second', coalesce(installed_at, $start::timestamp), $start::timestamp)
            / (86400 * 365.25)
        + date_diff('second', $start::timestamp, $end::timestamp) / (2 * 86400 * 365.25)
            as age_years
    from devices
    where device_id not in (select device_id from environment_monitors)
),

device_groups as (
    select zone, device_type, floor(age_years) as ab, count(*) as n, sum(age_years) as sage
    from devs
    group by all
),

exposure as (
    select
        g.device_type, g.ab, c.tb, c.hb, c.vb, c.sb,
        sum(c.hours * g.n)::double as device_hours,
        sum(c.st * g.n) as st, sum(c.sh * g.n) as sh, sum(c.sv * g.n) as sv,
        sum(c.ss * g.n) as ss, sum(c.hours * g.sage) as sage
    from zone_cells as c
    join device_groups as g using (zone)
    group by all
),

events as (
    select
        d.device_type, floor(d.age_years) as ab, z.tb, z.hb, z.vb, z.sb,
        count(*) filter (where e.event = 'failure') as n_failures,
        count(*) filter (where e.event = 'reboot') as n_reboots
    from device_events as e
    join devs as d using (device_id)
    join zone_hours as z on z.zone = d.zone and z.hour_at = date_trunc('hour', e.event_at)
    where e.event in ('failure', 'reboot') and e.event_at >= $start and e.event_at < $end
    group by all
),

final as (
    select
        x.device_type, x.device_hours::double as device_hours,
        x.st / x.device_hours as temperature_c,
        x.sh / x.device_hours as humidity_pct,
        x.sv / x.device_hours as vibration_g,
        x.ss / x.device_hours as daily_swing_c,
        x.sage / x.device_hours as age_years,
        coalesce(e.n_failures, 0)::bigint as n_failures,
        coalesce(e.n_reboots, 0)::bigint as n_reboots
    from exposure as x
    left join events as e using (device_type, ab, tb, hb, vb, sb)
)

select * from final
