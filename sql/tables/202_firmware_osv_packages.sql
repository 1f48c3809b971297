-- OSV feeds name packages their own way: a per-feed mapping from a feed's package
-- names (and ecosystems) to the fleet's manufacturer and model, and, on each stored
-- advisory, the feed it came from and notes on what could not be judged (GIT ranges,
-- packages that map to no model).
alter table firmware_advisories add column feed varchar default 'default';
alter table firmware_advisories add column notes varchar;
comment on table firmware_advisories is 'Grain: one row per OSV record loaded. severity: CRITICAL, HIGH, MODERATE, LOW or UNKNOWN; score the numeric CVSS score where the feed gives one; record the OSV JSON as received; feed the label it was loaded under (selects the rows of firmware_osv_packages); notes what of the record is not judged (GIT ranges, unmapped packages), null when everything is.';

create table firmware_osv_packages (
    feed          varchar not null,
    ecosystem     varchar not null,
    package       varchar not null,
    manufacturer  varchar not null,
    model         varchar not null,
    note          varchar,
    set_at        timestamp not null,
    primary key (feed, ecosystem, package, manufacturer, model)
);
comment on table firmware_osv_packages is 'Grain: one row per OSV package name that a feed uses for a model. feed and ecosystem: the feed label and affected[].package.ecosystem it applies to (''*'': any); package: affected[].package.name; model ''*'': every model of the manufacturer. The most specific rows win (feed, then ecosystem); a name without rows is read as ''<manufacturer>/<model>''. Change with Firmware.map_osv_package.';
