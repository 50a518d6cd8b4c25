{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_id',
        on_schema_change='fail'
    )
}}
-- Event-grain interactions with their weight. Incremental on _load_id: each run takes the events of
-- loads newer than the newest one already here; delete+insert on event_id lets a correction (a newer
-- version of an event, see stg_interactions) replace the row it supersedes.
select
    event_id,
    user_id,
    product_id,
    session_id,
    interaction_type,
    cast(interaction_weight as bigint) as interaction_weight,
    rating,
    event_at,
    event_date,
    _load_id
from {{ ref('stg_interactions') }}
{% if is_incremental() %}
where _load_id > (select coalesce(max(_load_id), -1) from {{ this }})
{% endif %}
