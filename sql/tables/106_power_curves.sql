-- Battery cell curves as data (issue #16). A device names its curve
-- (devices.battery_curve, default: its battery_chemistry) and the number of cells
-- in series (devices.battery_cells, default: the chemistry's cells, else 1); a
-- reported pack voltage is divided by the cells and read through the curve's
-- per-cell points. Any chemistry is accepted: one without a curve still lands and
-- is named by power_findings (no_battery_curve) until its points are ingested
-- (kind battery_curves). Built-in per-cell curves for li_socl2, li_mno2, alkaline,
-- nimh, li_ion and lifepo4 are rows like any other: a user's rows replace them.
alter table devices add column battery_cells integer;
alter table devices add column battery_curve varchar;

create table battery_curves (
    curve_id       varchar not null,
    temperature_c  double not null,
    level_pct      double not null,
    voltage_v      double not null,
    cells          integer not null,
    batch_id       bigint,
    primary key (curve_id, temperature_c, level_pct)
);
comment on table battery_curves is 'Grain: one row per curve, temperature (C) and level (%). voltage_v is the open-circuit voltage (V) of cells cells in series at that state of charge; the per-cell voltage is voltage_v / cells. The conversion uses each curve''s points at the temperature nearest 20 C, linear between points. Ingest kind battery_curves; batch_id null for the built-in rows.';

-- built-in per-cell curves at 20 C (state of charge 0, 10, ..., 100 %): the former
-- battery_curve_points (alkaline there was a pack of two cells) plus li_mno2 and nimh
insert into battery_curves (curve_id, temperature_c, level_pct, voltage_v, cells)
select c.curve_id, 20.0, (i - 1) * 10.0, c.v[i], 1
from (values
    ('li_socl2', [2.90, 3.30, 3.45, 3.52, 3.56, 3.58, 3.60, 3.61, 3.62, 3.63, 3.66]),
    ('li_mno2',  [2.00, 2.55, 2.70, 2.78, 2.83, 2.87, 2.90, 2.93, 2.97, 3.02, 3.20]),
    ('alkaline', [1.00, 1.10, 1.18, 1.24, 1.29, 1.33, 1.37, 1.41, 1.45, 1.50, 1.60]),
    ('nimh',     [1.00, 1.15, 1.19, 1.21, 1.23, 1.24, 1.25, 1.27, 1.29, 1.32, 1.40]),
    ('li_ion',   [3.00, 3.45, 3.60, 3.68, 3.74, 3.79, 3.85, 3.92, 4.00, 4.08, 4.20]),
    ('lifepo4',  [2.50, 3.00, 3.15, 3.20, 3.23, 3.26, 3.28, 3.30, 3.32, 3.35, 3.60])
) c(curve_id, v), range(1, 12) r(i);

-- a chemistry's default cells in series (a device's battery_cells overrides it): the
-- built-in alkaline profile was a pack of two AA cells (2.0-3.2 V)
alter table battery_chemistries add column cells integer default 1;
update battery_chemistries set cells = 2 where chemistry = 'alkaline';
insert into battery_chemistries (chemistry, is_rechargeable, knee_pct, knee_gain, description, cells)
values
    ('li_mno2', false, 0.0, 0.0, 'Lithium manganese dioxide (CR123A, CR2032): slow slope, then a drop near empty.', 1),
    ('nimh', true, 0.0, 0.0, 'Nickel-metal hydride, rechargeable: flat voltage near 1.2 V per cell.', 1);
comment on table battery_chemistries is 'Grain: one row per battery chemistry. Below knee_pct (%) the reported level falls faster: dL/dC = -(1 + knee_gain * (knee_pct - L) / knee_pct) per % of charge used; knee_pct 0 means no knee. The knee applies to voltage-read levels; a percent fuel gauge gets it only where its own history shows it. cells: cells in series when a device does not say (devices.battery_cells). A chemistry without a row has no knee and one cell.';
comment on table battery_curve_points is 'Grain: one row per chemistry and level. Superseded by battery_curves (per-cell curves with cells and temperature); kept for old readers, no longer used by the conversion.';

-- the conversion's inputs (curves, chemistries' cells, each aggregated device's curve
-- and cells) as a hash: tsfleet.power.daystats.refresh rebuilds the daily sums when it
-- changed since they were folded (a curve ingested after the readings it converts)
alter table power_refresh add column curves_hash ubigint;
