-- Discharge rates summarized by device type, model, site, zone and firmware
-- version: median, 10th and 90th percentile of the per-device segment rates.
-- grain: one row per dimension (device_type | model | site | zone | firmware_version) and value
-- columns: dimension, value, n_devices, median_rate_pct_per_day, p10_rate_pct_per_day,
-- p90_rate_pct_per_day (% per day)
create or replace view battery_discharge_summary as
with rates as (
    select * from battery_discharge_device
    where rate_pct_per_day is not null and n_days >= 3
),
long as (
    select 'device_type' as dimension, device_type as value, rate_pct_per_day from rates
    union all select 'model', model, rate_pct_per_day from rates
    union all select 'site', site, rate_pct_per_day from rates
    union all select 'zone', zone, rate_pct_per_day from rates
    union all select 'firmware_version', coalesce(firmware_version, '(unknown)'), rate_pct_per_day
    from rates
),
final as (
    select dimension, value, count(*) as n_devices,
           median(rate_pct_per_day) as median_rate_pct_per_day,
           quantile_cont(rate_pct_per_day, 0.1) as p10_rate_pct_per_day,
           quantile_cont(rate_pct_per_day, 0.9) as p90_rate_pct_per_day
    from long
    group by all
    order by dimension, value
)
select * from final
