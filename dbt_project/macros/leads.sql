{#
    Lead identity, shared by stg_leads and the CRM status feed (stg_lead_status): the hash of the
    normalized phone when there is one, else of the normalized name + city. A status row that gives
    only a phone therefore finds its lead without a lookup.
#}
{% macro lead_key(phone_normalized, name_normalized, city_normalized) -%}
    {{ dbt.hash(
        "case when " ~ phone_normalized ~ " is not null then 'phone:' || " ~ phone_normalized
        ~ " else 'name:' || coalesce(" ~ name_normalized ~ ", '') || '|' || coalesce(" ~ city_normalized ~ ", '') end"
    ) }}
{%- endmacro %}

{# A website as a matching key: lower-cased, without scheme, leading www. and trailing slashes; '' is NULL. #}
{% macro normalize_website(column) -%}
    nullif(regexp_replace(regexp_replace(lower(trim({{ column }})), '^[a-z]+://(www[.])?', ''), '/+$', ''), '')
{%- endmacro %}
