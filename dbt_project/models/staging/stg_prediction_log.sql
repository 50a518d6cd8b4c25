-- The serving API's answers, one row per returned item; a request delivered twice keeps its first load.
with source as (

    select * from {{ source('raw', 'prediction_log') }}

),

ranked as (

    select
        *,
        dense_rank() over (partition by request_id order by _load_id) as delivery_rank
    from source

)

select
    cast(request_id as {{ dbt.type_string() }}) as request_id,
    cast(requested_at as timestamp) as requested_at,
    cast(requested_at as date) as requested_date,
    endpoint,
    caller_id,
    coalesce(variant, 'champion') as variant,
    model_name,
    model_version,
    mlflow_run_id,
    dagster_run_id,
    data_as_of,
    cast("rank" as integer) as item_rank,
    item_id,
    cast(score as double precision) as score,
    _load_id
from ranked
where delivery_rank = 1
