{#
    sales_grid_end(rows): a scalar subquery, the last order_date of the bulk of `rows` (a relation or a
    parenthesised query with an order_date column). fct_sales_daily zero-fills every product up to it;
    sales after it (a typo'd year inside the landing window, a test order dated months ahead) keep their
    own rows but no longer zero-fill every product up to their date.

    The rule of ml/dates.py (bulk_last_period), on weeks: the bulk ends at the last week holding at least
    stray_share of the median week's rows (over the weeks with rows), extended through thin weeks that
    follow it without an empty week between; a last week standing alone after the longest empty gap with
    fewer rows than the median week is stray too.
#}
{% macro sales_grid_end(rows) -%}
(
    with weeks as (

        select
            cast({{ dbt.date_trunc('week', 'order_date') }} as date) as week_start,
            count(*) as n_rows
        from {{ rows }} as grid_rows
        group by 1

    ),

    typical as (

        select percentile_cont(0.5) within group (order by n_rows) as median_rows
        from weeks

    ),

    sequenced as (

        select
            week_start,
            n_rows,
            lead(week_start) over (order by week_start) as next_week,
            lag(week_start) over (order by week_start) as previous_week,
            row_number() over (order by week_start desc) as from_last
        from weeks

    ),

    gaps as (

        select
            *,
            coalesce(week_start - previous_week, 7) / 7 - 1 as empty_weeks_before
        from sequenced

    ),

    share_end as (

        select min(gaps.week_start) as week_start
        from gaps
        where gaps.week_start >= (
                select max(weeks.week_start)
                from weeks
                cross join typical
                where weeks.n_rows >= {{ var('stray_share') }} * typical.median_rows
            )
            and (gaps.next_week is null or gaps.next_week - gaps.week_start > 7)

    ),

    lone_end as (

        select
            case
                when last_week.empty_weeks_before > coalesce(
                        (select max(empty_weeks_before) from gaps where from_last > 1), 0
                    )
                    and last_week.n_rows < (select median_rows from typical)
                    then last_week.previous_week
            end as week_start
        from gaps as last_week
        where last_week.from_last = 1

    ),

    bulk_end as (

        select
            case
                when lone_end.week_start is not null and lone_end.week_start < share_end.week_start
                    then lone_end.week_start
                else share_end.week_start
            end as week_start
        from share_end
        cross join lone_end

    )

    select max(grid_rows.order_date)
    from {{ rows }} as grid_rows
    where cast({{ dbt.date_trunc('week', 'grid_rows.order_date') }} as date) <= (select week_start from bulk_end)
)
{%- endmacro %}
