{{ config(meta={'dagster': {'ref': {'name': 'fct_sales_daily'}}}) }}
-- Zero-fill contract of fct_sales_daily: every product that ever sold has exactly one row per day from
-- its first sale (over every version of its lines) up to the end of the data's bulk (sales_grid_end),
-- and after it one row per day it sold on (stray dates are not zero-filled for the catalogue).
with calendar as (

    select {{ sales_grid_end(ref('stg_sales')) }} as grid_end

),

expected as (

    select
        stg_sales.product_id,
        calendar.grid_end,
        min(stg_sales.earliest_order_date) as first_sale_date,
        max(stg_sales.order_date) as last_sale_date,
        count(distinct case when stg_sales.order_date > calendar.grid_end then stg_sales.order_date end)
            as days_sold_after_grid
    from {{ ref('stg_sales') }} as stg_sales
    cross join calendar
    group by stg_sales.product_id, calendar.grid_end

),

expected_days as (

    select
        product_id,
        first_sale_date,
        case
            when first_sale_date > grid_end then last_sale_date
            else greatest(grid_end, last_sale_date)
        end as last_date,
        case
            when first_sale_date > grid_end then 0
            else {{ dbt.datediff('first_sale_date', 'grid_end', 'day') }} + 1
        end + days_sold_after_grid as n_days
    from expected

),

actual as (

    select
        product_id,
        min(sales_date) as first_date,
        max(sales_date) as last_date,
        count(*) as n_days
    from {{ ref('fct_sales_daily') }}
    group by product_id

)

select
    coalesce(expected_days.product_id, actual.product_id) as product_id,
    expected_days.first_sale_date,
    expected_days.last_date as expected_last_date,
    expected_days.n_days as expected_n_days,
    actual.first_date,
    actual.last_date,
    actual.n_days
from expected_days
full outer join actual
    on actual.product_id = expected_days.product_id
where expected_days.product_id is null
   or actual.product_id is null
   or actual.first_date <> expected_days.first_sale_date
   or actual.last_date <> expected_days.last_date
   or actual.n_days <> expected_days.n_days
