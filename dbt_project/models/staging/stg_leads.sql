-- Scraped lead observations with the normalized fields used to recognise one business across
-- URLs and scrapes. lead_key = hash of the normalized phone when there is one, else of the
-- normalized name + city. Exact re-observations (same URL, same scrape time) are dropped.
with source as (

    select * from {{ source('raw', 'leads') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by source_url, scraped_at
            order by _load_id desc
        ) as observation_rank
    from source

),

normalized as (

    select
        trim(name) as name,
        {{ normalize_text('name') }} as name_normalized,
        nullif(trim(category), '') as category,
        address,
        {{ normalize_address('address') }} as address_normalized,
        nullif(trim(city), '') as city,
        {{ normalize_text('city') }} as city_normalized,
        phone,
        {{ normalize_phone('phone') }} as phone_normalized,
        nullif(trim(website), '') as website,
        cast(rating as double precision) as rating,
        cast(review_count as bigint) as review_count,
        source_url,
        cast(scraped_at as timestamp) as scraped_at,
        _load_id,
        _loaded_at
    from ranked
    where observation_rank = 1

)

select
    {{ dbt.hash(
        "case when phone_normalized is not null then 'phone:' || phone_normalized"
        ~ " else 'name:' || coalesce(name_normalized, '') || '|' || coalesce(city_normalized, '') end"
    ) }} as lead_key,
    case when phone_normalized is not null then 'phone' else 'name_city' end as lead_key_basis,
    *
from normalized
