-- How fresh each analysis is: its last run, the data it covered, and what
-- has arrived since.
-- grain: one row per analysis
-- columns: last_run_at and last_ok_at (UTC), duration_s (seconds), status, error,
--          n_items (recomputed in the last run), covered_batch_id, data_until (UTC),
--          pending_batches (ingest batches since the last successful run),
--          received_lag_s (seconds between the newest arrival and the end of the last
--          successful run; <= 0 means the result reflects everything received),
--          n_failures_since_ok,
--          oldest_pending_at (UTC, when the oldest ingest batch the last successful run
--          did not cover was committed; null when it covered everything),
--          stale_s (seconds: how old the oldest data not yet reflected is, 0 when none;
--          "reflects data received up to stale_s seconds ago", the service's 5-minute bar)
create or replace view freshness as
with last_run as (
    select * from analysis_runs
    qualify row_number() over (partition by analysis order by run_id desc) = 1
),

last_ok as (
    select * from analysis_runs
    where status = 'ok'
    qualify row_number() over (partition by analysis order by run_id desc) = 1
),

arrivals as (
    select
        max(batch_id) as max_batch_id,
        cast(min(finished_at) as timestamp) as first_received_at,
        cast(max(finished_at) as timestamp) as last_received_at
    from ingest_batches
),

pending as (
    select o.analysis, cast(min(b.finished_at) as timestamp) as oldest_pending_at
    from last_ok as o
    join ingest_batches as b on b.batch_id > o.to_batch_id
    group by o.analysis
),

failures as (
    select r.analysis, count(*) as n_failures_since_ok
    from analysis_runs as r
    left join last_ok as o on o.analysis = r.analysis
    where r.status = 'failed' and r.run_id > coalesce(o.run_id, 0)
    group by r.analysis
),

final as (
    select
        l.analysis,
        l.started_at as last_run_at,
        o.finished_at as last_ok_at,
        l.duration_s,
        l.status,
        l.error,
        l.n_items,
        o.to_batch_id as covered_batch_id,
        o.data_until,
        coalesce(a.max_batch_id, 0) - coalesce(o.to_batch_id, 0) as pending_batches,
        date_diff('second', o.finished_at, a.last_received_at) as received_lag_s,
        coalesce(f.n_failures_since_ok, 0) as n_failures_since_ok,
        case when o.run_id is null then a.first_received_at else p.oldest_pending_at end
            as oldest_pending_at,
        coalesce(date_diff('millisecond', oldest_pending_at,
                           cast(now() as timestamp)) / 1000.0, 0.0) as stale_s
    from last_run as l
    left join last_ok as o on o.analysis = l.analysis
    left join pending as p on p.analysis = l.analysis
    left join failures as f on f.analysis = l.analysis
    cross join arrivals as a
)

select * from final
