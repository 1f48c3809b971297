-- Brings stores level that applied an early text of a migration edited afterwards
-- (before sql/migrations.lock.json existed): 102_power_day_stats (daily means became
-- daily sums), 300_calibration (calibration_peer_exclusions added). Every statement is
-- a no-op on a store that applied the current texts. The comments that 301 and 400
-- changed are not re-applied here: a later migration may own them.
--
-- battery_day_stats and temperature_day_stats are caches of the readings: rows in the
-- early layout are deleted and the watermark is cleared, so the next power analysis
-- rebuilds them from the readings (and the hourly rollup where raw readings aged out).
delete from power_refresh
    where (select count(*) from information_schema.columns
           where table_name = 'battery_day_stats' and column_name = 'level_pct') > 0;
alter table battery_day_stats drop column if exists level_pct;
alter table battery_day_stats drop column if exists first_level_pct;
alter table battery_day_stats drop column if exists last_level_pct;
alter table battery_day_stats drop column if exists mean_observed_at;
alter table battery_day_stats add column if not exists level_sum double;
alter table battery_day_stats add column if not exists epoch_sum double;
alter table battery_day_stats add column if not exists am_n bigint;
alter table battery_day_stats add column if not exists am_level_sum double;
alter table battery_day_stats add column if not exists pm_n bigint;
alter table battery_day_stats add column if not exists pm_level_sum double;
delete from battery_day_stats where level_sum is null;
alter table temperature_day_stats drop column if exists temperature_c;
alter table temperature_day_stats add column if not exists temperature_sum double;
delete from temperature_day_stats where temperature_sum is null;

create table if not exists calibration_peer_exclusions (
    device_id    varchar primary key,
    verdict      varchar not null,
    computed_at  timestamp not null,
    params       varchar not null
);
