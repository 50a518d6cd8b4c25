{{ config(meta={'dagster': {'ref': {'name': 'fct_sales_daily'}}}) }}
-- Zero-fill contract of fct_sales_daily: every product that ever sold has exactly one row per day
-- from its first sale (over every version of its lines) up to the latest order_date in the data.
with expected as (

    select
        product_id,
        min(earliest_order_date) as first_sale_date,
        (select max(order_date) from {{ ref('stg_sales') }}) as last_date
    from {{ ref('stg_sales') }}
    group by product_id

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
    coalesce(expected.product_id, actual.product_id) as product_id,
    expected.first_sale_date,
    expected.last_date as expected_last_date,
    actual.first_date,
    actual.last_date,
    actual.n_days
from expected
full outer join actual
    on actual.product_id = expected.product_id
where expected.product_id is null
   or actual.product_id is null
   or actual.first_date <> expected.first_sale_date
   or actual.last_date <> expected.last_date
   or actual.n_days <> {{ dbt.datediff('expected.first_sale_date', 'expected.last_date', 'day') }} + 1
