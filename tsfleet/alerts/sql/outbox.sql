-- The notification outbox after a lifecycle step at time $at.
-- grain: one row per notification owed (fingerprint, episode, status)
-- A firing notice is owed when an alert fires unsilenced (also when its silence ends
-- while it still fires); a resolved notice only for an episode whose firing notice was
-- owed. The key fingerprint:episode:status makes every notice unique: re-evaluation
-- never queues one twice.
insert or ignore into notifications
with owed as (
    select fingerprint, episode, 'firing' as status
    from alerts
    where state = 'firing' and silenced_by is null
    union all
    select a.fingerprint, a.episode, 'resolved' as status
    from alerts a
    join notifications n
      on n.fingerprint = a.fingerprint and n.episode = a.episode and n.status = 'firing'
    where a.state = 'resolved'
),

final as (
    select fingerprint || ':' || episode || ':' || status as notification_id,
           fingerprint, episode, status, $at as created_at, 'pending' as state,
           0 as attempts, null as last_error, null as delivered_at
    from owed
)

select * from final
