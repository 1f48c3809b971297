-- The finding codes each domain may emit in its findings view, declared once
-- (sql/finding_codes.csv, reloaded whenever that file changes, like the views).
create table finding_codes (
    domain    varchar not null,
    code      varchar not null,
    severity  varchar not null,
    meaning   varchar not null,
    primary key (domain, code)
);
comment on table finding_codes is 'Grain: one row per domain and finding code it may emit. severity: the usual severity (info | warning | critical; a row of a findings view may carry another when the summary says why); meaning: what the finding says and what to do. Loaded from sql/finding_codes.csv; an alert rule naming a code not declared here is refused.';
