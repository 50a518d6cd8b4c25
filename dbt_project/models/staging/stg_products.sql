-- Current version of every product: files may be re-delivered with new prices, and the latest
-- delivery wins (highest _load_id, then the last line of that file).
with source as (

    select * from {{ source('raw', 'products') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by product_id
            order by _load_id desc, _source_line desc
        ) as version_rank,
        count(*) over (partition by product_id) as n_versions
    from source

)

select
    cast(product_id as {{ dbt.type_string() }}) as product_id,
    trim(name) as name,
    trim(category) as category,
    nullif(trim(brand), '') as brand,
    {{ money('price') }} as price,
    cast(stock_on_hand as bigint) as stock_on_hand,
    cast(n_versions as bigint) as n_versions,
    _source_file,
    _source_line,
    _load_id,
    _loaded_at
from ranked
where version_rank = 1
