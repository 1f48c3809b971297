-- Offline state of every device that has reported, judged against its own schedule, and
-- of every registered device that never reported, judged from its installed_at.
-- grain: one row per device with at least one stored reading, plus one per registered
-- device with an installed_at and no reading (never_reported; devices registered without
-- installed_at and never heard from have no clock to judge them by and are left out)
-- columns: device_id, site, zone; last_observed_at (null if never reported) and as_of (UTC);
-- never_reported; silent_s (s since the newest reading, or since installed_at); profile_interval_s (devices.reporting_interval_s), reported_interval_s
-- (latest reporting_interval_s reading), learned_interval_s (mean spacing of the device's
-- most frequent metric, from device_latest: span / (n_readings - 1)), expected_interval_s
-- and interval_source (reported | learned | profile | learned+profile | default), k
-- (multiples of the interval that count as offline), n_missed_intervals, is_offline,
-- declared_offline_at (UTC).
-- The clock is the variable tsfleet_as_of if set, else the newest observed_at of the
-- fleet (so a replayed or backfilled store is judged as of its own data); k is the
-- variable tsfleet_offline_k, default 3. A backfilled batch moves last_observed_at and
-- closes the gap. A device whose newest online/offline device event (Sparkplug B births and
-- deaths) is 'offline' and not older than its newest reading is offline at once, whatever
-- the interval (declared_offline_at, else null). The learned interval needs 4 readings; when the profile also gives one,
-- the larger wins, so a daily device with an hourly profile is not offline after 3 hours.
create or replace view device_offline as
with clock as (
    select coalesce(getvariable('tsfleet_as_of')::timestamp,
                    (select max(observed_at) from device_latest)) as as_of,
           coalesce(getvariable('tsfleet_offline_k')::double, 3.0) as k
),

per_metric as (
    select device_id, metric, observed_at, value, n_readings,
           case when n_readings >= 4
                then epoch(observed_at - first_observed_at) / (n_readings - 1) end as spacing_s
    from device_latest
),

per_device as (
    select device_id,
           max(observed_at) as last_observed_at,
           arg_max(spacing_s, n_readings) as learned_interval_s,
           max(value) filter (where metric = 'reporting_interval_s') as reported_interval_s
    from per_metric
    group by device_id
),

expected as (
    select p.*, d.site, d.zone, d.reporting_interval_s as profile_interval_s,
           case when p.reported_interval_s is not null then p.reported_interval_s
                when p.learned_interval_s > 0 and d.reporting_interval_s > 0
                    then greatest(p.learned_interval_s, d.reporting_interval_s)
                when p.learned_interval_s > 0 then p.learned_interval_s
                when d.reporting_interval_s > 0 then d.reporting_interval_s
                else 3600 end as expected_interval_s,
           case when p.reported_interval_s is not null then 'reported'
                when p.learned_interval_s > 0 and d.reporting_interval_s > 0 then 'learned+profile'
                when p.learned_interval_s > 0 then 'learned'
                when d.reporting_interval_s > 0 then 'profile'
                else 'default' end as interval_source
    from per_device p
    left join devices d using (device_id)
),

declared as (
    select device_id, max(event_at) as declared_offline_at
    from (select device_id, event, event_at,
                 row_number() over (partition by device_id
                                    order by event_at desc, event = 'online') as rn
          from device_events where event in ('online', 'offline'))
    where rn = 1 and event = 'offline'
    group by device_id
),

never as (
    select d.device_id, d.site, d.zone, d.installed_at, d.reporting_interval_s,
           coalesce(nullif(d.reporting_interval_s, 0), 3600) as expected_interval_s,
           case when d.reporting_interval_s > 0 then 'profile' else 'default' end
               as interval_source
    from devices d
    anti join per_device p using (device_id)
    where d.installed_at is not null
),

final as (
    select e.device_id, e.site, e.zone, e.last_observed_at, c.as_of, false as never_reported,
           greatest(epoch(c.as_of - e.last_observed_at), 0) as silent_s,
           e.profile_interval_s, e.reported_interval_s, e.learned_interval_s,
           e.expected_interval_s, e.interval_source, c.k,
           floor(greatest(epoch(c.as_of - e.last_observed_at), 0) / e.expected_interval_s)
               as n_missed_intervals,
           epoch(c.as_of - e.last_observed_at) > c.k * e.expected_interval_s
               or coalesce(x.declared_offline_at >= e.last_observed_at, false) as is_offline,
           x.declared_offline_at
    from expected e cross join clock c
    left join declared x using (device_id)
    union all
    select n.device_id, n.site, n.zone, null::timestamp, c.as_of, true,
           greatest(epoch(c.as_of - n.installed_at), 0),
           n.reporting_interval_s, null::double, null::double,
           n.expected_interval_s, n.interval_source, c.k,
           floor(greatest(epoch(c.as_of - n.installed_at), 0) / n.expected_interval_s),
           coalesce(epoch(c.as_of - n.installed_at) > c.k * n.expected_interval_s, false)
               or x.declared_offline_at is not null,
           x.declared_offline_at
    from never n cross join clock c
    left join declared x using (device_id)
)

select * from final
