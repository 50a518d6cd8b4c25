-- Clickstream events, one per event_id (the latest delivery wins: ingestion loads a re-delivered event only
-- when its values changed, as a correction), with the implicit-feedback weight of
-- each interaction type taken from the `interaction_weights` var.
with source as (

    select * from {{ source('raw', 'interactions') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by event_id
            order by _load_id desc, _source_line desc
        ) as version_rank
    from source

),

typed as (

    select
        cast(event_id as {{ dbt.type_string() }}) as event_id,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        lower(trim(interaction_type)) as interaction_type,
        cast(rating as double precision) as rating,
        cast(event_at as timestamp) as event_at,
        nullif(trim(session_id), '') as session_id,
        _source_file,
        _source_line,
        _load_id,
        _loaded_at
    from ranked
    where version_rank = 1

)

select
    event_id,
    user_id,
    product_id,
    interaction_type,
    {{ interaction_weight('interaction_type') }} as interaction_weight,
    rating,
    event_at,
    cast(event_at as date) as event_date,
    session_id,
    _source_file,
    _source_line,
    _load_id,
    _loaded_at
from typed
