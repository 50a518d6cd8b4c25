-- Lead observations from both sources (the directory crawler and the Places-style API), with the
-- normalized fields used to recognise one business across URLs, sources and scrapes. lead_key: see the
-- lead_key() macro. Exact re-observations (same URL, same scrape time) are dropped.
with source as (

    select
        'directory' as source,
        cast(null as varchar) as place_id,
        name, category, address, city, phone, website, rating, review_count, source_url, scraped_at,
        _load_id, _loaded_at
    from {{ source('raw', 'leads') }}

    union all

    select
        'places_api' as source,
        place_id,
        name, category, address, city, phone, website, rating, review_count, source_url, scraped_at,
        _load_id, _loaded_at
    from {{ source('raw', 'place_results') }}

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
        source,
        place_id,
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
        {{ normalize_website('website') }} as website_normalized,
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
    {{ lead_key('phone_normalized', 'name_normalized', 'city_normalized') }} as lead_key,
    case when phone_normalized is not null then 'phone' else 'name_city' end as lead_key_basis,
    *
from normalized
