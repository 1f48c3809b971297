-- The (device, day) keys the next refresh of the daily power aggregates must
-- recompute: days with battery or temperature readings in ingest batches after
-- the watermark (power_refresh.batch_id) up to its target. Empty when there is no
-- watermark yet: the refresh then rebuilds from the whole history.
-- grain: one row per device and UTC day to recompute
-- columns: day (date)
create or replace view power_refresh_keys as
with mark as (
    select max(batch_id) as batch_id, max(target_batch_id) as target_batch_id
    from power_refresh
),
final as (
    select distinct r.device_id, r.observed_at::date as day
    from readings r, mark m
    where r.metric in ('battery_pct', 'battery_voltage_v', 'temperature_c')
      and m.batch_id is not null
      and r.batch_id > m.batch_id and r.batch_id <= m.target_batch_id
)
select * from final
