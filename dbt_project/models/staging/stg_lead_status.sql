-- Every status change from the CRM export (raw.lead_status), resolved to a lead_key: the lead_key when
-- the CRM gives one, else the lead_key() of its phone, else the one lead with that website (a website
-- shared by several leads resolves to none). Unresolved rows stay, with lead_key NULL (a warn test).
-- A change delivered twice (overlapping exports) is kept once: its first delivery.
with source as (

    select * from {{ source('raw', 'lead_status') }}

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by lead_key, phone, website, status, changed_at
            order by _load_id, _source_line
        ) as delivery_rank
    from source

),

websites as (

    select website_normalized, min(lead_key) as lead_key
    from {{ ref('stg_leads') }}
    where website_normalized is not null
    group by website_normalized
    having count(distinct lead_key) = 1

),

referenced as (

    select
        nullif(trim(deduplicated.lead_key), '') as given_lead_key,
        {{ normalize_phone('deduplicated.phone') }} as phone_normalized,
        {{ normalize_website('deduplicated.website') }} as website_normalized,
        lower(trim(deduplicated.status)) as status,
        cast(deduplicated.changed_at as timestamp) as changed_at,
        nullif(trim(deduplicated.owner), '') as owner,
        deduplicated.note,
        deduplicated._source_file,
        deduplicated._source_line,
        deduplicated._load_id
    from deduplicated
    where deduplicated.delivery_rank = 1

)

select
    coalesce(
        referenced.given_lead_key,
        case when referenced.phone_normalized is not null
            then {{ lead_key('referenced.phone_normalized', 'null', 'null') }} end,
        websites.lead_key
    ) as lead_key,
    case
        when referenced.given_lead_key is not null then 'lead_key'
        when referenced.phone_normalized is not null then 'phone'
        when websites.lead_key is not null then 'website'
    end as resolved_by,
    referenced.status,
    referenced.changed_at,
    referenced.owner,
    referenced.note,
    referenced.phone_normalized,
    referenced.website_normalized,
    referenced._source_file,
    referenced._source_line,
    referenced._load_id
from referenced
left join websites
    on websites.website_normalized = referenced.website_normalized
