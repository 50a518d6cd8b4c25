-- Implicit-feedback matrix for the recommender: one row per (user, product) the user interacted with.
-- score = sum(weight * 2^(-age_days / half_life_days)), age measured back from the latest event in
-- the whole clickstream (not now()), so rebuilding on the same data always gives the same scores.
{%- set half_life_days = var('half_life_days') %}

with events as (

    select * from {{ ref('fct_interactions') }}

),

as_of as (

    select max(event_at) as scored_at from events

),

aged as (

    select
        events.user_id,
        events.product_id,
        events.interaction_type,
        events.interaction_weight,
        events.event_at,
        as_of.scored_at,
        cast({{ dbt.datediff('events.event_at', 'as_of.scored_at', 'second') }} as double precision)
            / 86400.0 as age_days
    from events
    cross join as_of

)

select
    user_id,
    product_id,
    cast(sum(
        interaction_weight
        * exp(-ln(cast(2 as double precision)) * age_days / cast({{ half_life_days }} as double precision))
    ) as double precision) as score,
    count(*) as n_events,
    max(event_at) as last_interaction_at,
    max(case when interaction_type = 'purchase' then 1 else 0 end) = 1 as has_purchased,
    max(scored_at) as scored_at
from aged
group by user_id, product_id
