-- The columns of every table and view listed in catalog, with their types and
-- comments (comment on column ...), for a dashboard author picking a field.
-- grain: one row per column of a table or view of the open database (every schema).
-- columns: schema_name; object_name (table or view); kind ('table' | 'view');
--   column_index (1-based position); column_name; data_type; is_nullable; comment.
create view catalog_columns as
with objects as (
    select schema_name, table_name as object_name, 'table' as kind
    from duckdb_tables()
    where database_name = current_database() and not internal and not temporary
    union all
    select schema_name, view_name as object_name, 'view' as kind
    from duckdb_views()
    where database_name = current_database() and not internal and not temporary
      and view_name not in (select name from published_objects where kind = 'internal_view')
),

final as (
    select o.schema_name,
           o.object_name,
           o.kind,
           c.column_index,
           c.column_name,
           lower(c.data_type) as data_type,
           c.is_nullable,
           c.comment
    from objects as o
    join duckdb_columns() as c
        on c.database_name = current_database()
        and c.schema_name = o.schema_name
        and c.table_name = o.object_name
    order by o.schema_name = 'main' desc, o.schema_name, o.object_name, c.column_index
)

select * from final
