-- Issue #16, session 10: a level read through a cell curve is the curve's state of
-- charge, so the chemistry's knee is no longer imposed on voltage-read levels either;
-- like a percent gauge, a voltage-only device gets the knee only where its own history
-- shows it (tsfleet.power.knee). The table's comment said otherwise.
comment on table battery_chemistries is 'Grain: one row per battery chemistry. Below knee_pct (%) the reported level falls faster: dL/dC = -(1 + knee_gain * (knee_pct - L) / knee_pct) per % of charge used; knee_pct 0 means no knee. The knee is a candidate only: a device (percent fuel gauge or voltage read through a cell curve, whose level is already the state of charge) gets it where its own history, or its type''s, shows it. cells: cells in series when a device does not say (devices.battery_cells). A chemistry without a row has no knee and one cell.';
