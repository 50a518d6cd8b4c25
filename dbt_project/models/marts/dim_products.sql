-- One row per product: the current catalogue attributes plus lifetime sales. Products that never
-- sold are kept (units_sold = 0). Product ids that appear in sales or interactions but not (yet) in
-- the catalogue are kept as inferred members (is_catalogued = false, attributes NULL) so every fact
-- row still joins to a product.
with products as (

    select * from {{ ref('stg_products') }}

),

sales as (

    select * from {{ ref('stg_sales') }}

),

interactions as (

    select * from {{ ref('stg_interactions') }}

),

product_sales as (

    select
        product_id,
        min(order_date) as first_sale_date,
        max(order_date) as last_sale_date,
        sum(quantity) as units_sold,
        sum(line_revenue) as revenue,
        count(distinct order_id) as n_orders
    from sales
    group by product_id

),

referenced_products as (

    select product_id from sales
    union
    select product_id from interactions

),

inferred_products as (

    select referenced_products.product_id
    from referenced_products
    left join products
        on products.product_id = referenced_products.product_id
    where products.product_id is null

),

all_products as (

    select
        product_id,
        name,
        category,
        brand,
        price,
        stock_on_hand,
        n_versions,
        true as is_catalogued
    from products

    union all

    select
        product_id,
        cast(null as {{ dbt.type_string() }}) as name,
        cast(null as {{ dbt.type_string() }}) as category,
        cast(null as {{ dbt.type_string() }}) as brand,
        {{ money('null') }} as price,
        cast(null as bigint) as stock_on_hand,
        cast(0 as bigint) as n_versions,
        false as is_catalogued
    from inferred_products

)

select
    all_products.product_id,
    all_products.name,
    all_products.category,
    all_products.brand,
    all_products.price,
    all_products.stock_on_hand,
    all_products.n_versions,
    all_products.is_catalogued,
    product_sales.first_sale_date,
    product_sales.last_sale_date,
    cast(coalesce(product_sales.units_sold, 0) as bigint) as units_sold,
    {{ money('coalesce(product_sales.revenue, 0)') }} as revenue,
    cast(coalesce(product_sales.n_orders, 0) as bigint) as n_orders
from all_products
left join product_sales
    on product_sales.product_id = all_products.product_id
