-- What tsfleet last pushed to each Alertmanager (v2 API), so that a firing alert is
-- re-sent before it expires there and its resolution is sent exactly when due.
create table alertmanager_pushes (
    url             varchar not null,
    fingerprint     varchar not null,
    episode         integer not null,
    status          varchar not null,
    pushed_at       timestamp not null,
    ends_at         timestamp,
    primary key (url, fingerprint)
);
comment on table alertmanager_pushes is 'Grain: one row per Alertmanager URL and alert fingerprint. status: firing | resolved, as last accepted by that Alertmanager; episode: the alert episode pushed; pushed_at (UTC): when; ends_at (UTC): the endsAt sent (a firing alert expires in Alertmanager then unless re-sent).';
