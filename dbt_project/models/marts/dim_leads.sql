-- One row per business (lead_key) merged from every observation of it, on every source:
--   name          most frequent normalized name (ties: first seen), shown as first scraped spelling;
--   category, address_normalized, city, website, rating: latest non-null observation;
--   review_count  the highest seen (counts only grow; a lower one is a stale mirror);
--   source_urls   every distinct page (or API place) the business was seen on; sources: which sources;
--   status        current CRM status (stg_lead_status_current), 'new' when the CRM never mentioned it;
--   missing_from_recent_scrapes: not seen on any of the latest var('lead_recent_scrape_days') scrape
--                 days, counted back from the data's own latest scrape day (never the wall clock).
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

lead_sources as (

    select distinct lead_key, source from leads

),

source_lists as (

    select
        lead_key,
        count(*) as n_sources,
        {{ dbt.listagg('source', "' | '", 'order by source') }} as sources
    from lead_sources
    group by lead_key

),

scrape_days as (

    select
        scrape_day,
        dense_rank() over (order by scrape_day desc) as days_back
    from (select distinct cast(scraped_at as date) as scrape_day from leads) as days

),

recent_cutoff as (

    select min(scrape_day) as first_recent_day, max(scrape_day) as latest_scrape_day
    from scrape_days
    where days_back <= {{ var('lead_recent_scrape_days') }}

),

observations as (

    select
        lead_key,
        max(lead_key_basis) as lead_key_basis,
        max(phone_normalized) as phone_normalized,
        max(review_count) as review_count,
        count(distinct source_url) as n_source_urls,
        count(*) as n_observations,
        min(scraped_at) as first_seen_at,
        max(scraped_at) as last_seen_at
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
    cast(source_lists.n_sources as bigint) as n_sources,
    source_lists.sources,
    cast(observations.n_observations as bigint) as n_observations,
    observations.first_seen_at,
    observations.last_seen_at,
    cast(observations.last_seen_at as date) < recent_cutoff.first_recent_day as missing_from_recent_scrapes,
    recent_cutoff.latest_scrape_day,
    coalesce(current_status.status, 'new') as status,
    current_status.changed_at as status_changed_at,
    current_status.owner as status_owner
from observations
cross join recent_cutoff
inner join best_name
    on best_name.lead_key = observations.lead_key
    and best_name.spelling_rank = 1
inner join latest
    on latest.lead_key = observations.lead_key
inner join url_lists
    on url_lists.lead_key = observations.lead_key
inner join source_lists
    on source_lists.lead_key = observations.lead_key
left join {{ ref('stg_lead_status_current') }} as current_status
    on current_status.lead_key = observations.lead_key
