{#
    Text normalization used to match scraped leads across sources. Pure SQL expressions built from
    regexp_replace(..., 'g'), lower, trim and substr, which behave the same on PostgreSQL (ARE) and
    DuckDB (RE2) for the patterns used here (no \b word boundaries: PostgreSQL reads \b as backspace).
#}

{# lower-cased, trimmed, internal whitespace collapsed to one space; '' becomes NULL #}
{% macro normalize_text(column) -%}
    nullif(trim(regexp_replace(lower({{ column }}), '\s+', ' ', 'g')), '')
{%- endmacro %}

{#
    Phone: keep digits only; an 11-digit number starting with the North-American country code 1 loses
    it, so "+1 555 123 4567", "(555) 123-4567" and "555.123.4567" all become 5551234567.
#}
{% macro normalize_phone(column) -%}
    {%- set digits = "regexp_replace(" ~ column ~ ", '[^0-9]', '', 'g')" -%}
    case
        when length({{ digits }}) = 11 and substr({{ digits }}, 1, 1) = '1' then substr({{ digits }}, 2)
        else nullif({{ digits }}, '')
    end
{%- endmacro %}

{#
    Address: lower-case; dots become spaces ("st." -> "st"); commas get exactly one following space;
    whitespace collapsed and trimmed; trailing punctuation stripped; street-type words replaced by the
    abbreviations in the `address_abbreviations` var (whole words only), so "12 Main Street" and
    "12 main st." both become "12 main st".
#}
{% macro normalize_address(column) -%}
    {%- set ns = namespace(expr="lower(" ~ column ~ ")") -%}
    {%- set ns.expr = "replace(" ~ ns.expr ~ ", '.', ' ')" -%}
    {%- set ns.expr = "regexp_replace(" ~ ns.expr ~ ", '\\s*,\\s*', ', ', 'g')" -%}
    {%- set ns.expr = "trim(regexp_replace(" ~ ns.expr ~ ", '\\s+', ' ', 'g'))" -%}
    {%- set ns.expr = "regexp_replace(" ~ ns.expr ~ ", '[[:punct:][:space:]]+$', '')" -%}
    {%- for word, abbreviation in var('address_abbreviations').items() -%}
        {%- set ns.expr = "regexp_replace(" ~ ns.expr ~ ", '(^|[^a-z0-9])" ~ word ~ "([^a-z0-9]|$)', '\\1" ~ abbreviation ~ "\\2', 'g')" -%}
    {%- endfor -%}
    nullif({{ ns.expr }}, '')
{%- endmacro %}
