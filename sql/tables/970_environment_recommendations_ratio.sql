-- Issue #18: problem zones are ranked by how many times the fitted model says their
-- environment multiplies their devices' failure rate, not by avoidable failures a year
-- (a count that also grows with the zone's size). Rows written before it keep NULL
-- until the next analysis.
alter table environment_recommendations add column model_rate_ratio double;
comment on table environment_recommendations is 'Grain: one row per problem zone, ranked by model_rate_ratio (ties: avoidable_failures_per_year). model_rate_ratio: the fitted failure rate of the zone''s devices at its hours over the rate with the significant factors brought within the fitted limits (to fleet-typical levels for an effect without a threshold); zones below 1.2 are not listed. rate_ratio: observed failure rate of the zone over the fleet rate expected for its devices (type and age), exact 95% CI; avoidable_failures_per_year: the same model''s difference, a year, for planning.';
