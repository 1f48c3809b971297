-- The device card's copy of the findings keeps each domain's own columns beyond the
-- findings contract (calibration_findings: level) as one JSON object, so that the card
-- shows what the findings view shows.
alter table card_findings add column extra json;
comment on table card_findings is 'Grain: as the findings views (the findings contract), every domain. A copy of each domain''s findings view made after its last analysis run, for the device card and for the findings a run opened and closed; as fresh as that run (see freshness). extra: the view''s columns beyond the contract (calibration: level) as a JSON object, null when it has none.';
