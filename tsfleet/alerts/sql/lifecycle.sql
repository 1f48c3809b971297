-- The alert lifecycle, one evaluation step at time $at.
-- grain: one row per fingerprint of an evaluated rule (current candidates and known alerts)
-- Inputs: _alert_now (this evaluation's candidates, one row per fingerprint),
-- _alert_rules (rule, for_s, keep_s of the rules evaluated now) and alerts.
-- Silences are applied afterwards (silences.sql).
-- States: pending -> firing (after for_s) -> resolved (keep_s after the condition last
-- held); acknowledged behaves as firing. A pending alert whose condition clears is
-- resolved without ever having fired (starts_at stays null). A resolved alert whose
-- condition holds again starts a new episode.
create or replace temp table _alert_next as
with prev as (
    select a.*, r.for_s, r.keep_s
    from alerts a
    join _alert_rules r using (rule)
),

cand as (
    select n.*, r.for_s, r.keep_s
    from _alert_now n
    join _alert_rules r using (rule)
),

joined as (
    select
        coalesce(c.fingerprint, p.fingerprint) as fingerprint,
        coalesce(c.rule, p.rule) as rule,
        coalesce(c.for_s, p.for_s) as for_s,
        coalesce(c.keep_s, p.keep_s) as keep_s,
        c.fingerprint is not null as is_active,
        p.state as prev_state,
        c.fingerprint is not null and (p.state is null or p.state = 'resolved') as is_new_episode,
        if(c.fingerprint is not null, c.severity, p.severity) as severity,
        if(c.fingerprint is not null, c.domain, p.domain) as domain,
        if(c.fingerprint is not null, c.finding, p.finding) as finding,
        if(c.fingerprint is not null, c.subject_kind, p.subject_kind) as subject_kind,
        if(c.fingerprint is not null, c.subject_id, p.subject_id) as subject_id,
        if(c.fingerprint is not null, c.site, p.site) as site,
        if(c.fingerprint is not null, c.zone, p.zone) as zone,
        if(c.fingerprint is not null, c.value, p.value) as value,
        if(c.fingerprint is not null, c.labels, p.labels) as labels,
        if(c.fingerprint is not null, c.annotations, p.annotations) as annotations,
        if(c.fingerprint is not null, c.action, p.action) as action,
        if(c.fingerprint is not null, c.due_at, p.due_at) as due_at,
        if(c.fingerprint is not null, c.observed_at, p.observed_at) as observed_at,
        p.episode as prev_episode,
        p.active_since as prev_active_since,
        p.starts_at as prev_starts_at,
        p.ends_at as prev_ends_at,
        p.last_seen_at as prev_last_seen_at,
        p.acknowledged_at as prev_acknowledged_at,
        p.acknowledged_by as prev_acknowledged_by
    from cand c
    full outer join prev p on p.fingerprint = c.fingerprint
),

stepped as (
    select *,
        case
            when is_new_episode then if(for_s <= 0, 'firing', 'pending')
            when is_active and prev_state = 'pending'
                then if(epoch($at - prev_active_since) >= for_s, 'firing', 'pending')
            when is_active then prev_state
            when prev_state = 'pending' then 'resolved'
            when prev_state in ('firing', 'acknowledged')
                then if(epoch($at - prev_last_seen_at) >= keep_s, 'resolved', prev_state)
            else prev_state
        end as state
    from joined
),

lifecycle as (
    select
        fingerprint, rule, state, severity, domain, finding, subject_kind, subject_id, site,
        zone, value, labels, annotations, action, due_at, observed_at,
        if(is_new_episode, coalesce(prev_episode, 0) + 1, prev_episode) as episode,
        if(is_new_episode, $at, prev_active_since) as active_since,
        case when state = 'firing' and (is_new_episode or prev_state = 'pending') then $at
             when is_new_episode then null
             else prev_starts_at end as starts_at,
        case when is_new_episode then null
             when state = 'resolved' and prev_state <> 'resolved' then $at
             else prev_ends_at end as ends_at,
        if(is_active, $at, prev_last_seen_at) as last_seen_at,
        $at as last_evaluated_at,
        if(is_new_episode, null, prev_acknowledged_at) as acknowledged_at,
        if(is_new_episode, null, prev_acknowledged_by) as acknowledged_by,
        null::varchar as silenced_by,
        prev_state,
        is_active
    from stepped
),

final as (
    select * from lifecycle
)

select * from final
