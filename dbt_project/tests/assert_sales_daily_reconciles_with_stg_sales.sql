{{ config(meta={'dagster': {'ref': {'name': 'fct_sales_daily'}}}) }}
-- fct_sales_daily must neither lose nor invent sales: its total quantity and revenue equal the
-- order lines in stg_sales (catches a broken incremental window or a bad zero-fill join).
with fact as (

    select
        coalesce(sum(quantity), 0) as quantity,
        coalesce(sum(revenue), 0) as revenue
    from {{ ref('fct_sales_daily') }}

),

lines as (

    select
        coalesce(sum(quantity), 0) as quantity,
        coalesce(sum(line_revenue), 0) as revenue
    from {{ ref('stg_sales') }}

)

select
    fact.quantity as fact_quantity,
    lines.quantity as lines_quantity,
    fact.revenue as fact_revenue,
    lines.revenue as lines_revenue
from fact
cross join lines
where fact.quantity <> lines.quantity
   or fact.revenue <> lines.revenue
