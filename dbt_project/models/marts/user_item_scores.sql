-- Implicit-feedback matrix: one row per (user, product) the user interacted with.
-- score = sum(weight * greatest(2^(-age_days / half_life_days), min_decay)), age measured back from the
-- user's own latest event (not now(), not the whole log's end), so rebuilding on the same data gives the
-- same scores and a user active years before the log ends keeps a history (ml/recommend/recency.py).
{%- set half_life_days = var('half_life_days') %}
{%- set min_decay = var('min_decay') %}

with events as (

    select * from {{ ref('fct_interactions') }}

),

user_end as (

    select user_id, max(event_at) as scored_at from events group by user_id

),

aged as (

    select
        events.user_id,
        events.product_id,
        events.interaction_type,
        events.interaction_weight,
        events.event_at,
        user_end.scored_at,
        cast({{ dbt.datediff('events.event_at', 'user_end.scored_at', 'second') }} as double precision)
            / 86400.0 as age_days
    from events
    inner join user_end on events.user_id = user_end.user_id

)

select
    user_id,
    product_id,
    cast(sum(
        interaction_weight
        * greatest(
            -- least(): 2^-64 is already far below min_decay, and Postgres raises on exp() underflow
            exp(-ln(cast(2 as double precision))
                * least(age_days / cast({{ half_life_days }} as double precision), cast(64 as double precision))),
            cast({{ min_decay }} as double precision)
        )
    ) as double precision) as score,
    count(*) as n_events,
    max(event_at) as last_interaction_at,
    max(case when interaction_type = 'purchase' then 1 else 0 end) = 1 as has_purchased,
    max(scored_at) as scored_at
from aged
group by user_id, product_id
