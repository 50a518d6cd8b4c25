"""The landing-zone contract: which CSV columns each source delivers and the raw tables they land in.

Everything downstream (the validator, the demo-data generator, the dbt sources) agrees on these names,
so they live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why a row was quarantined instead of loaded; stored verbatim in the quarantine tables."""

    MISSING_COLUMNS = "missing_columns"  # the file's header lacks contract columns: every row is kept aside
    UNREADABLE_FILE = "unreadable_file"  # not a text CSV in a supported encoding: the whole file, line 0
    MALFORMED_ROW = "malformed_row"  # wrong number of fields, or an unterminated quote
    INVALID_ENCODING = "invalid_encoding"  # bytes that are not UTF-8, or NUL (PostgreSQL cannot store it)
    MISSING_REQUIRED_FIELD = "missing_required_field"
    INVALID_DATE = "invalid_date"
    INVALID_TIMESTAMP = "invalid_timestamp"
    INVALID_QUANTITY = "invalid_quantity"  # not an integer
    NON_POSITIVE_QUANTITY = "non_positive_quantity"
    INVALID_PRICE = "invalid_price"  # not a number, or negative
    INVALID_STOCK = "invalid_stock"
    INVALID_RATING = "invalid_rating"  # not a number in [1, 5]
    OUT_OF_RANGE_NUMBER = "out_of_range_number"  # inf, 1e400, beyond int64 or the warehouse's money type
    OUT_OF_RANGE_DATE = "out_of_range_date"  # far outside the dates of the data itself (see DateWindow)
    INVALID_INTERACTION_TYPE = "invalid_interaction_type"
    UNKNOWN_PRODUCT_ID = "unknown_product_id"
    DUPLICATE_ID = "duplicate_id"
    UNPARSEABLE_PAGE = "unparseable_page"  # scraper: a page without the fields a lead needs
    FETCH_FAILED = "fetch_failed"  # scraper: a page that failed with 4xx or after its retries


INTERACTION_TYPES = ("view", "like", "cart", "purchase")


@dataclass(frozen=True)
class Source:
    """One landing source: its folder, its CSV header and the columns that identify a row."""

    name: str
    columns: tuple[str, ...]
    required: tuple[str, ...]
    key: tuple[str, ...]
    values: tuple[str, ...]  # typed non-key columns: two deliveries of a key differ when these differ

    @property
    def raw_table(self) -> str:
        return self.name

    @property
    def quarantine_table(self) -> str:
        return f"{self.name}_quarantine"


PRODUCTS = Source(
    name="products",
    columns=("product_id", "name", "category", "brand", "price", "stock_on_hand"),
    required=("product_id", "name", "category", "price"),
    key=("product_id",),
    values=("name", "category", "brand", "price", "stock_on_hand"),
)
SALES = Source(
    name="sales",
    columns=("order_id", "order_date", "product_id", "quantity", "unit_price", "customer_id"),
    required=("order_id", "order_date", "product_id", "quantity", "unit_price"),
    key=("order_id", "product_id"),
    values=("order_date", "quantity", "unit_price", "customer_id"),
)
INTERACTIONS = Source(
    name="interactions",
    columns=("event_id", "user_id", "product_id", "interaction_type", "rating", "timestamp", "session_id"),
    required=("event_id", "user_id", "product_id", "interaction_type", "timestamp"),
    key=("event_id",),
    values=("user_id", "product_id", "interaction_type", "rating", "event_at", "session_id"),
)
LANDING_SOURCES = (PRODUCTS, SALES, INTERACTIONS)

LEAD_FIELDS = (
    "name",
    "category",
    "address",
    "city",
    "phone",
    "website",
    "rating",
    "review_count",
    "source_url",
    "scraped_at",
)
