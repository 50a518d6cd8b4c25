{#
    Interaction weights live in ONE place: the `interaction_weights` var in dbt_project.yml.
    interaction_weight(col) turns an interaction_type column into its weight (NULL for an unknown type,
    which the not_null / accepted_values tests then flag); interaction_types() lists the known types.
#}
{% macro interaction_types() -%}
    {{ return(var('interaction_weights').keys() | list) }}
{%- endmacro %}

{% macro interaction_weight(interaction_type_column) -%}
    case {{ interaction_type_column }}
    {%- for interaction_type, weight in var('interaction_weights').items() %}
        when '{{ interaction_type }}' then {{ weight }}
    {%- endfor %}
    end
{%- endmacro %}
