-- Session 27: retention can also delete what was quarantined or left unmapped long ago.
--
-- `tsfleet retention --quarantine-days N` deletes quarantined rows (with their texts in
-- text_pieces) and unmapped fields received more than N days before the run; the run
-- records what it deleted. cutoff_at is NULL for a run that found no readings to roll up.
alter table retention_runs add column quarantine_days integer;
alter table retention_runs add column quarantine_cutoff_at timestamptz;
alter table retention_runs add column n_quarantine_deleted bigint;
alter table retention_runs add column n_unmapped_deleted bigint;
alter table retention_runs alter column cutoff_at drop not null;

comment on table retention_runs is 'Grain: one row per retention run. cutoff_at (UTC): raw readings observed before it were rolled up and deleted (NULL when the store had no readings). With quarantine_days: quarantined rows (n_quarantine_deleted) and unmapped fields (n_unmapped_deleted) received before quarantine_cutoff_at were deleted with their texts; NULL when the run kept them.';
