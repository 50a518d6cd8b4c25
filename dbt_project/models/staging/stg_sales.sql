-- Typed order lines, one per (order_id, product_id). Ingestion already drops duplicate keys; the
-- dedupe here is defensive and keeps the FIRST delivery (earliest _load_id), so a re-delivered file
-- can never change history that fct_sales_daily has already processed.
with source as (

    select * from {{ source('raw', 'sales') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by order_id, product_id
            order by _load_id, _source_line
        ) as delivery_rank
    from source

)

select
    cast(order_id as {{ dbt.type_string() }}) as order_id,
    cast(order_date as date) as order_date,
    cast(product_id as {{ dbt.type_string() }}) as product_id,
    cast(customer_id as {{ dbt.type_string() }}) as customer_id,
    cast(quantity as bigint) as quantity,
    {{ money('unit_price') }} as unit_price,
    {{ money('quantity * ' ~ money('unit_price')) }} as line_revenue,
    _source_file,
    _source_line,
    _load_id,
    _loaded_at
from ranked
where delivery_rank = 1
