{#
    date_spine(start_date, end_date): a query returning one row per calendar day, start_date..end_date
    inclusive, as a single `date` column named date_day. Both arguments are SQL expressions (scalar
    subqueries are fine); a NULL bound (e.g. no data yet) yields zero rows instead of an error, so
    the marts build on empty sources.

    generate_series exists on PostgreSQL and DuckDB but differs: PostgreSQL's is a set-returning
    function over timestamps, DuckDB's scalar form returns a list to unnest. Other adapters fall back to
    a recursive CTE.
#}
{% macro date_spine(start_date, end_date) -%}
    {{ return(adapter.dispatch('date_spine', 'optimum')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_spine(start_date, end_date) -%}
    with recursive spine_days (date_day) as (
        select cast(({{ start_date }}) as date)
        where ({{ start_date }}) is not null and ({{ end_date }}) is not null
        union all
        select cast({{ dbt.dateadd('day', 1, 'date_day') }} as date)
        from spine_days
        where date_day < cast(({{ end_date }}) as date)
    )
    select date_day from spine_days
{%- endmacro %}

{% macro postgres__date_spine(start_date, end_date) -%}
    select cast(spine.day_ts as date) as date_day
    from generate_series(
        cast(({{ start_date }}) as timestamp),
        cast(({{ end_date }}) as timestamp),
        interval '1 day'
    ) as spine (day_ts)
{%- endmacro %}

{% macro duckdb__date_spine(start_date, end_date) -%}
    select cast(spine.day_ts as date) as date_day
    from (
        select unnest(generate_series(
            cast(({{ start_date }}) as timestamp),
            cast(({{ end_date }}) as timestamp),
            interval 1 day
        )) as day_ts
    ) as spine
{%- endmacro %}
