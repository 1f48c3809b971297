-- Update campaigns: where each targeted device stands.
-- grain: one row per campaign and device
-- columns: state (latest state: scheduled, downloading, downloaded, updating, succeeded,
--   failed, rolled_back); state_at (UTC) when it entered it; outcome (pending | in_progress |
--   succeeded | failed | rolled_back); reason of the last failure; scheduled_at,
--   succeeded_at (UTC); hours_in_state (h, to firmware_params.as_of); is_stuck (in
--   downloading, downloaded or updating longer than stuck_after_hours)
create view firmware_campaign_devices as
with ev as (
    select campaign_id, device_id, event_at, state, target_version, reason,
           case state when 'scheduled' then 0 when 'downloading' then 1 when 'downloaded' then 2
                      when 'updating' then 3 when 'failed' then 4 when 'rolled_back' then 5
                      when 'succeeded' then 6 end as state_order
    from update_events
),
per_device as (
    select campaign_id, device_id,
           arg_max(state, (event_at, state_order)) as state,
           max(event_at) as state_at,
           arg_max(target_version, event_at) filter (where target_version is not null)
               as target_version,
           arg_max(reason, event_at) filter (where reason is not null) as reason,
           min(event_at) filter (where state = 'scheduled') as scheduled_at,
           max(event_at) filter (where state = 'succeeded') as succeeded_at
    from ev
    group by campaign_id, device_id
),
final as (
    select c.campaign_id, c.device_id, d.manufacturer, d.model, d.hardware_rev, d.site, d.zone,
           c.target_version, c.state, c.state_at,
           case when c.state = 'scheduled' then 'pending'
                when c.state in ('downloading', 'downloaded', 'updating') then 'in_progress'
                else c.state end as outcome,
           c.reason, c.scheduled_at, c.succeeded_at,
           round(date_diff('second', c.state_at, p.as_of) / 3600.0, 2) as hours_in_state,
           c.state in ('downloading', 'downloaded', 'updating')
               and date_diff('second', c.state_at, p.as_of) > p.stuck_after_hours * 3600
               as is_stuck
    from per_device c
    left join devices d on d.device_id = c.device_id
    cross join firmware_params p
)
select * from final
