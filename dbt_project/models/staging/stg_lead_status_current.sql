-- The current status of every lead the CRM knows: its latest change (ties: the later delivery).
-- snap_lead_status keeps the history of this view; stg_lead_status has every change.
with ranked as (

    select
        *,
        row_number() over (
            partition by lead_key
            order by changed_at desc, _load_id desc, _source_line desc
        ) as recency_rank
    from {{ ref('stg_lead_status') }}
    where lead_key is not null

)

select lead_key, status, changed_at, owner, note, resolved_by
from ranked
where recency_rank = 1
