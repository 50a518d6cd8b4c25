-- One row per shop user seen in the clickstream: activity span, counts per interaction type and the
-- category they engage with most (highest total interaction weight; ties -> more events, then name).
with events as (

    select * from {{ ref('fct_interactions') }}

),

products as (

    select product_id, category from {{ ref('dim_products') }}

),

user_activity as (

    select
        user_id,
        min(event_at) as first_seen_at,
        max(event_at) as last_seen_at,
        count(*) as n_events,
        {%- for interaction_type in interaction_types() %}
        cast(sum(case when interaction_type = '{{ interaction_type }}' then 1 else 0 end) as bigint)
            as n_{{ interaction_type }}s,
        {%- endfor %}
        count(distinct session_id) as n_sessions
    from events
    group by user_id

),

category_affinity as (

    select
        events.user_id,
        products.category,
        row_number() over (
            partition by events.user_id
            order by sum(events.interaction_weight) desc, count(*) desc, products.category
        ) as affinity_rank
    from events
    inner join products
        on products.product_id = events.product_id
    where products.category is not null
    group by events.user_id, products.category

)

select
    user_activity.user_id,
    user_activity.first_seen_at,
    user_activity.last_seen_at,
    cast(user_activity.n_events as bigint) as n_events,
    user_activity.n_views,
    user_activity.n_likes,
    user_activity.n_carts,
    user_activity.n_purchases,
    cast(user_activity.n_sessions as bigint) as n_sessions,
    category_affinity.category as favourite_category
from user_activity
left join category_affinity
    on category_affinity.user_id = user_activity.user_id
    and category_affinity.affinity_rank = 1
