-- Session 26: a metric declaration is keyed by its name in lower case.
--
-- Readings and metric_catalog match metric names in lower case, but metric_declarations
-- kept the name as declared, so 'Flow_LPM' and 'flow_lpm' were two declarations: the
-- catalog took one of them in no set order, and a view joining declarations to readings
-- (drift tolerances, declared environmental factors) missed a name in capitals. Ingest now
-- stores the name in lower case; this folds the declarations stored before. Of names that
-- differ only in case, the one the catalog holds now (same unit and range) stays, else the
-- newest batch, so that nothing already in effect changes.
create table metric_declarations_new (
    metric               varchar primary key,
    unit                 varchar not null,
    quantity             varchar,
    min_value            double not null,
    max_value            double not null,
    description          varchar,
    drift_tolerance_pct  double,
    min_scale            double,
    batch_id             bigint,
    is_environmental     boolean
);
insert into metric_declarations_new
select lower(d.metric), d.unit, d.quantity, d.min_value, d.max_value, d.description,
       d.drift_tolerance_pct, d.min_scale, d.batch_id, d.is_environmental
from metric_declarations d
left join metric_catalog c on c.metric = lower(d.metric)
qualify row_number() over (
    partition by lower(d.metric)
    order by (c.unit = d.unit and c.min_value = d.min_value and c.max_value = d.max_value)
             desc nulls last,
             d.batch_id desc nulls last, d.metric) = 1;
drop table metric_declarations;
alter table metric_declarations_new rename to metric_declarations;
comment on table metric_declarations is 'Grain: one row per metric declared by a user (ingest kind "metrics" or fleet.metrics.add()), keyed by its name in lower case; each declaration is copied into metric_catalog (name, unit, physical range min_value..max_value) and readings quarantined as unknown_metric are re-ingested. drift_tolerance_pct: default recalibration tolerance (% of scale) of sensors of the metric (calibration_tolerances per device type wins; else 2); min_scale: the smallest scale drift percentages refer to, in the metric''s unit (calibration_metric_scales wins). is_environmental: the metric is an environmental factor, measured by the environment monitors and analysed by fleet.environment like temperature (NULL or false: not).';
