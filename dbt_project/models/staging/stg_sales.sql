-- Typed order lines, one per (order_id, product_id): the LATEST delivery of a key wins. Ingestion loads a
-- re-delivered key only when its values changed (a correction), so raw.sales keeps every version and
-- this model shows the current one. earliest_order_date (over all versions) lets fct_sales_daily
-- recompute the day a correction moved a line away from.
with source as (

    select * from {{ source('raw', 'sales') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by order_id, product_id
            order by _load_id desc, _source_line desc
        ) as version_rank,
        min(order_date) over (partition by order_id, product_id) as earliest_order_date,
        count(*) over (partition by order_id, product_id) as n_versions
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
    cast(earliest_order_date as date) as earliest_order_date,
    cast(n_versions as bigint) as n_versions,
    _source_file,
    _source_line,
    _load_id,
    _loaded_at
from ranked
where version_rank = 1
