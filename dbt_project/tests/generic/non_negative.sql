{#
    Fails on every row where the column is negative (NULLs pass; pair with not_null when needed).
    Quantities, revenue, prices, counts and scores must never go below zero.
#}
{% test non_negative(model, column_name) %}

select {{ column_name }}
from {{ model }}
where {{ column_name }} < 0

{% endtest %}
