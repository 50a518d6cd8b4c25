-- One row per business (lead_key) merged from every scraped observation of it:
--   name          most frequent normalized name (ties: first seen), shown as first scraped spelling;
--   category, address_normalized, city, website, rating: latest non-null observation;
--   review_count  the highest seen (counts only grow; a lower one is a stale mirror);
--   source_urls   every distinct page the business was seen on.
{%- set latest_order = "scraped_at desc, _load_id desc, source_url desc" %}
{%- set latest_non_null_columns = ['category', 'address_normalized', 'city', 'website', 'rating'] %}

with leads as (

    select * from {{ ref('stg_leads') }}

),

name_frequency as (

    select
        lead_key,
        name_normalized,
        row_number() over (
            partition by lead_key
            order by count(*) desc, min(scraped_at), name_normalized
        ) as name_rank
    from leads
    group by lead_key, name_normalized

),

best_name as (

    select
        leads.lead_key,
        leads.name,
        leads.name_normalized,
        row_number() over (
            partition by leads.lead_key
            order by leads.scraped_at, leads._load_id, leads.source_url
        ) as spelling_rank
    from leads
    inner join name_frequency
        on name_frequency.lead_key = leads.lead_key
        and name_frequency.name_rank = 1
        and (
            name_frequency.name_normalized = leads.name_normalized
            or (name_frequency.name_normalized is null and leads.name_normalized is null)
        )

),

latest_values as (

    select
        lead_key,
        {%- for column in latest_non_null_columns %}
        first_value({{ column }}) over (
            partition by lead_key
            order by case when {{ column }} is null then 1 else 0 end, {{ latest_order }}
            rows between unbounded preceding and unbounded following
        ) as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from leads

),

latest as (

    select
        lead_key,
        {%- for column in latest_non_null_columns %}
        max({{ column }}) as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from latest_values
    group by lead_key

),

lead_urls as (

    select distinct lead_key, source_url from leads

),

url_lists as (

    select
        lead_key,
        {{ dbt.listagg('source_url', "' | '", 'order by source_url') }} as source_urls
    from lead_urls
    group by lead_key

),

observations as (

    select
        lead_key,
        max(lead_key_basis) as lead_key_basis,
        max(phone_normalized) as phone_normalized,
        max(review_count) as review_count,
        count(distinct source_url) as n_source_urls,
        count(*) as n_observations,
        min(scraped_at) as first_scraped_at,
        max(scraped_at) as last_scraped_at
    from leads
    group by lead_key

)

select
    observations.lead_key,
    observations.lead_key_basis,
    best_name.name,
    best_name.name_normalized,
    latest.category,
    latest.address_normalized,
    latest.city,
    observations.phone_normalized,
    latest.website,
    latest.rating,
    observations.review_count,
    cast(observations.n_source_urls as bigint) as n_source_urls,
    url_lists.source_urls,
    cast(observations.n_observations as bigint) as n_observations,
    observations.first_scraped_at,
    observations.last_scraped_at
from observations
inner join best_name
    on best_name.lead_key = observations.lead_key
    and best_name.spelling_rank = 1
inner join latest
    on latest.lead_key = observations.lead_key
inner join url_lists
    on url_lists.lead_key = observations.lead_key
