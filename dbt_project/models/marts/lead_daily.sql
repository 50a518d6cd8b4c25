-- Prospecting per calendar day, from the first to the last day the data knows (scrapes and CRM changes):
-- leads seen, new leads (first seen that day) and leads that moved to qualified that day. Days without a
-- scrape are kept (is_scrape_day false) so a qualification on such a day is still counted.
with leads as (

    select lead_key, cast(scraped_at as date) as seen_day from {{ ref('stg_leads') }}

),

first_seen as (

    select lead_key, min(seen_day) as first_day from leads group by lead_key

),

qualifications as (

    select lead_key, cast(changed_at as date) as qualified_day
    from {{ ref('stg_lead_status') }}
    where status = 'qualified' and lead_key is not null

),

known_days as (

    select seen_day as known_day from leads
    union all
    select qualified_day from qualifications

),

days as (

    {{ date_spine("select min(known_day) from known_days", "select max(known_day) from known_days") }}

),

seen as (

    select seen_day, count(distinct lead_key) as leads_seen from leads group by seen_day

),

new_leads as (

    select first_day, count(*) as new_leads from first_seen group by first_day

),

qualified as (

    select qualified_day, count(distinct lead_key) as qualified_leads from qualifications group by qualified_day

)

select
    days.date_day as lead_day,
    seen.seen_day is not null as is_scrape_day,
    cast(coalesce(seen.leads_seen, 0) as bigint) as leads_seen,
    cast(coalesce(new_leads.new_leads, 0) as bigint) as new_leads,
    cast(coalesce(qualified.qualified_leads, 0) as bigint) as qualified_leads
from days
left join seen on seen.seen_day = days.date_day
left join new_leads on new_leads.first_day = days.date_day
left join qualified on qualified.qualified_day = days.date_day
