{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['product_id', 'sales_date'],
        on_schema_change='fail',
        post_hook="delete from {{ this }} where n_orders = 0 and sales_date > {{ sales_grid_end(ref('stg_sales')) }}"
    )
}}
{#
    One row per product x day, zero-filled from the product's first sale (over all versions of its lines)
    to the end of the data's bulk (sales_grid_end: the latest order_date unless stray dates trail it; never
    the wall clock). Days after the bulk keep the rows of what sold on them, without zero rows: one stray
    sale a year ahead adds one row, not a year of days for every product.

    Incremental logic (late-arriving history safe):
      * watermark  = the highest sales _load_id already folded in (max of _max_load_id; every sales row
                     lands in exactly one (product, day) row, so this is the max _load_id of the last build);
      * new rows   = stg_sales rows with _load_id > watermark;
      * recompute  = every (product, day) from least(min earliest_order_date of the new rows, previous max
                     sales_date + 1, the day after the previous last zero-filled day) to the new max
                     order_date, for every product (so a new latest date also zero-fills products that did
                     not sell, new products appear, and a grid end that moved forward past stray dates
                     zero-fills the days it now covers; a correction is a new row whose
                     earliest_order_date covers the day its old version counted on);
      * delete+insert on (product_id, sales_date) replaces exactly those rows, and the post-hook deletes
        zero rows a grid end that moved back no longer covers.
    A full refresh recomputes from the first order_date; both give identical rows (see the pytest).
#}

with sales as (

    select * from {{ ref('stg_sales') }}

),

{% if is_incremental() %}

processed as (

    select
        max(_max_load_id) as max_load_id,
        max(sales_date) as max_sales_date,
        max(case when n_orders = 0 then sales_date end) as last_zero_filled_date
    from {{ this }}

),

new_sales as (

    select sales.*
    from sales
    cross join processed
    where processed.max_load_id is null
       or sales._load_id > processed.max_load_id

),

{% endif %}

bounds as (

    select
        {% if is_incremental() -%}
        case
            when processed.max_sales_date is null
                then (select min(order_date) from sales)
            when (select min(earliest_order_date) from new_sales) is null
                then cast({{ dbt.dateadd('day', 1, 'processed.max_sales_date') }} as date)
            else least(
                (select min(earliest_order_date) from new_sales),
                cast({{ dbt.dateadd('day', 1, 'processed.max_sales_date') }} as date),
                cast({{ dbt.dateadd('day', 1, 'coalesce(processed.last_zero_filled_date, processed.max_sales_date)') }} as date)
            )
        end as window_start,
        {%- else -%}
        (select min(order_date) from sales) as window_start,
        {%- endif %}
        (select max(order_date) from sales) as window_end,
        {{ sales_grid_end('sales') }} as grid_end
    {% if is_incremental() -%}
    from processed
    {%- endif %}

),

spine as (

    {{ date_spine('(select window_start from bounds)', '(select window_end from bounds)') }}

),

product_first_sale as (

    -- over every version of its lines, so a correction that moves a line later leaves a zero day behind
    -- instead of a row an incremental build could not remove
    select
        product_id,
        min(earliest_order_date) as first_sale_date
    from sales
    group by product_id

),

daily_sales as (

    select
        product_id,
        order_date as sales_date,
        sum(quantity) as quantity,
        sum(line_revenue) as revenue,
        count(distinct order_id) as n_orders,
        max(_load_id) as max_load_id
    from sales
    where order_date >= (select window_start from bounds)
    group by product_id, order_date

),

product_days as (

    select
        product_first_sale.product_id,
        spine.date_day as sales_date
    from product_first_sale
    inner join spine
        on spine.date_day >= product_first_sale.first_sale_date
        and spine.date_day <= (select grid_end from bounds)

    union

    -- after the bulk: only the days something sold
    select
        product_id,
        sales_date
    from daily_sales
    where sales_date > (select grid_end from bounds)

)

select
    product_days.product_id,
    product_days.sales_date,
    cast(coalesce(daily_sales.quantity, 0) as bigint) as quantity,
    {{ money('coalesce(daily_sales.revenue, 0)') }} as revenue,
    cast(coalesce(daily_sales.n_orders, 0) as bigint) as n_orders,
    {{ money('daily_sales.revenue / nullif(daily_sales.quantity, 0)') }} as avg_unit_price,
    cast(daily_sales.max_load_id as bigint) as _max_load_id
from product_days
left join daily_sales
    on daily_sales.product_id = product_days.product_id
    and daily_sales.sales_date = product_days.sales_date
