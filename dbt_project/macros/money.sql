{#
    Money is stored as an exact decimal so that sums do not depend on the order rows are added in:
    a full refresh and an incremental build of fct_sales_daily then give bit-identical revenue, and
    DuckDB and PostgreSQL agree to the cent.
#}
{% macro money(expression) -%}
    cast({{ expression }} as decimal(18, 4))
{%- endmacro %}
