-- Every table and view this store publishes, with its grain, description and
-- column list, for dashboard authors who want to find things without reading code.
-- Derived from DuckDB's own metadata (duckdb_tables, duckdb_views,
-- duckdb_columns and their comments) and published_objects, so the tables and
-- views of every domain, present and future, appear here without editing this file.
-- grain: one row per table or view of the open database (every schema), but the
--   internal helper views (kind 'internal_view' in published_objects).
-- columns: schema_name; name; kind ('table' | 'view'); grain (from a table's
--   'Grain: ...' comment or the view file's grain header); description (the rest
--   of the comment or the view file's header); is_result (true when the object
--   carries computed_at and params: an analytic result with provenance);
--   n_columns; columns ('name type, ...' in column order); estimated_rows
--   (tables; null for views); source_file (the sql/views file of a view).
create view catalog as
with tables as (
    select schema_name, table_name as name, 'table' as kind, comment,
           estimated_size as estimated_rows
    from duckdb_tables()
    where database_name = current_database() and not internal and not temporary
),

views as (
    select schema_name, view_name as name, 'view' as kind, comment,
           cast(null as bigint) as estimated_rows
    from duckdb_views()
    where database_name = current_database() and not internal and not temporary
      and view_name not in (select name from published_objects where kind = 'internal_view')
),

objects as (
    select * from tables
    union all
    select * from views
),

columns_ as (
    select schema_name, table_name as name,
           count(*) as n_columns,
           string_agg(column_name || ' ' || lower(data_type), ', '
                      order by column_index) as columns,
           bool_or(column_name = 'computed_at') and bool_or(column_name = 'params')
               as is_result
    from duckdb_columns()
    where database_name = current_database()
    group by schema_name, table_name
),

commented as (
    select o.*,
           nullif(regexp_extract(o.comment, '^\s*[Gg]rain:\s*(.*?)\.(\s|$)', 1), '')
               as comment_grain,
           case when regexp_matches(o.comment, '^\s*[Gg]rain:')
                then nullif(trim(regexp_replace(o.comment, '^\s*[Gg]rain:\s*.*?\.(\s|$)', '')), '')
                else nullif(trim(o.comment), '')
           end as comment_description
    from objects as o
),

final as (
    select c.schema_name,
           c.name,
           c.kind,
           coalesce(nullif(rtrim(trim(p.grain), '.'), ''), c.comment_grain) as grain,
           coalesce(nullif(p.description, ''), c.comment_description) as description,
           coalesce(k.is_result, false) as is_result,
           coalesce(k.n_columns, 0) as n_columns,
           k.columns,
           c.estimated_rows,
           p.source_file
    from commented as c
    left join columns_ as k using (schema_name, name)
    left join published_objects as p
        on c.kind = 'view' and c.schema_name = 'main' and p.name = c.name
    order by c.schema_name = 'main' desc, c.schema_name, c.kind, c.name
)

select * from final
