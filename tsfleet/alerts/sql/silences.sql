-- Which silence mutes each open alert at time $at.
-- grain: updates alerts.silenced_by (one silence id per muted alert, the smallest id)
-- A silence matches an alert when every one of its matchers matches the alert's labels
-- (=, !=, =~ and !~, regular expressions matching the whole value; a missing label is
-- the empty string), between its starts_at (inclusive) and ends_at (exclusive).
update alerts set silenced_by = m.silence_id
from (
    with matchers as (
        select silence_id, m.label, m.op, m.value as pattern
        from (select silence_id,
                     unnest(from_json(matchers,
                            '[{"label": "VARCHAR", "op": "VARCHAR", "value": "VARCHAR"}]')) as m
              from silences
              where starts_at <= $at and $at < ends_at)
    ),

    per_silence as (
        select a.fingerprint, m.silence_id,
               bool_and(case m.op
                   when '=' then coalesce(json_extract_string(a.labels, '$.' || m.label), '')
                                 = m.pattern
                   when '!=' then coalesce(json_extract_string(a.labels, '$.' || m.label), '')
                                  <> m.pattern
                   when '=~' then regexp_full_match(
                                  coalesce(json_extract_string(a.labels, '$.' || m.label), ''),
                                  m.pattern)
                   when '!~' then not regexp_full_match(
                                  coalesce(json_extract_string(a.labels, '$.' || m.label), ''),
                                  m.pattern)
               end) as is_match
        from alerts a
        cross join matchers m
        where a.state <> 'resolved'
        group by a.fingerprint, m.silence_id
    ),

    final as (
        select fingerprint, min(silence_id) as silence_id
        from per_silence
        where is_match
        group by fingerprint
    )

    select * from final
) m
where alerts.fingerprint = m.fingerprint
