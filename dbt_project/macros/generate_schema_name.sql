{#
    Use a model's custom schema verbatim (staging, marts, snapshots) instead of dbt's default
    "<target_schema>_<custom>", so every target and every environment sees the same schema names
    the orchestration and serving code query. Nodes without a custom schema fall back to the target schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
