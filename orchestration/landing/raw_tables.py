"""DDL of the `raw` schema: typed landing tables, their quarantine twins and the load log.

Types are the portable subset DuckDB and PostgreSQL share, so the same statements build both targets.
"""

from __future__ import annotations

from orchestration.landing.contract import INTERACTIONS, PRODUCTS, SALES, Source
from orchestration.warehouse import Connection

RAW_SCHEMA = "raw"

_LOAD_COLUMNS = {"_source_file": "VARCHAR", "_source_line": "BIGINT", "_load_id": "BIGINT", "_loaded_at": "TIMESTAMP"}

RAW_COLUMNS: dict[str, dict[str, str]] = {
    PRODUCTS.raw_table: {
        "product_id": "VARCHAR",
        "name": "VARCHAR",
        "category": "VARCHAR",
        "brand": "VARCHAR",
        "price": "DOUBLE PRECISION",
        "stock_on_hand": "BIGINT",
        **_LOAD_COLUMNS,
    },
    SALES.raw_table: {
        "order_id": "VARCHAR",
        "order_date": "DATE",
        "product_id": "VARCHAR",
        "quantity": "BIGINT",
        "unit_price": "DOUBLE PRECISION",
        "customer_id": "VARCHAR",
        **_LOAD_COLUMNS,
    },
    INTERACTIONS.raw_table: {
        "event_id": "VARCHAR",
        "user_id": "VARCHAR",
        "product_id": "VARCHAR",
        "interaction_type": "VARCHAR",
        "rating": "DOUBLE PRECISION",
        "event_at": "TIMESTAMP",
        "session_id": "VARCHAR",
        **_LOAD_COLUMNS,
    },
    "prediction_log": {
        "request_id": "VARCHAR",
        "requested_at": "TIMESTAMP",
        "endpoint": "VARCHAR",
        "caller_id": "VARCHAR",
        "variant": "VARCHAR",
        "model_name": "VARCHAR",
        "model_version": "VARCHAR",
        "mlflow_run_id": "VARCHAR",
        "dagster_run_id": "VARCHAR",
        "data_as_of": "VARCHAR",
        "rank": "BIGINT",
        "item_id": "VARCHAR",
        "score": "DOUBLE PRECISION",
        **_LOAD_COLUMNS,
    },
    "leads": {
        "name": "VARCHAR",
        "category": "VARCHAR",
        "address": "VARCHAR",
        "city": "VARCHAR",
        "phone": "VARCHAR",
        "website": "VARCHAR",
        "rating": "DOUBLE PRECISION",
        "review_count": "BIGINT",
        "source_url": "VARCHAR",
        "scraped_at": "TIMESTAMP",
        "_content_hash": "VARCHAR",
        "_load_id": "BIGINT",
        "_loaded_at": "TIMESTAMP",
    },
}

QUARANTINE_COLUMNS = {
    "source_file": "VARCHAR",
    "source_line": "BIGINT",
    "reason": "VARCHAR",
    "detail": "VARCHAR",
    "raw_record": "VARCHAR",
    "_load_id": "BIGINT",
    "_loaded_at": "TIMESTAMP",
    "fields_json": "VARCHAR",  # the record's contract fields, so it can be re-validated later
    "resolved_load_id": "BIGINT",  # the load that finally took the row in (a late product arrived); NULL: waiting
}
_ADDED_QUARANTINE_COLUMNS = ("fields_json", "resolved_load_id")  # absent from tables created before they existed

LOAD_LOG_COLUMNS = {
    "load_id": "BIGINT",
    "source": "VARCHAR",
    "source_file": "VARCHAR",
    "content_sha256": "VARCHAR",
    "rows_loaded": "BIGINT",
    "rows_quarantined": "BIGINT",
    "loaded_at": "TIMESTAMP",
}

QUARANTINED_SOURCES = (PRODUCTS.name, SALES.name, INTERACTIONS.name, "leads", "prediction_log")


def qualified(table: str) -> str:
    return f"{RAW_SCHEMA}.{table}"


def quarantine_table(source: Source | str) -> str:
    name = source.name if isinstance(source, Source) else source
    return qualified(f"{name}_quarantine")


def _create(conn: Connection, table: str, columns: dict[str, str]) -> None:
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns.items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {qualified(table)} ({body})")


def ensure_raw_schema(conn: Connection) -> None:
    """Create every raw table (empty if its source never delivered) so dbt always finds its sources.

    load_log holds one row per landed file content: the unique index makes claiming a file and loading
    its rows one atomic step, so two overlapping runs can never load the same file twice.
    """
    conn.lock("raw_schema")
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {RAW_SCHEMA}.load_id_seq")
    for table, columns in RAW_COLUMNS.items():
        _create(conn, table, columns)
    for source in QUARANTINED_SOURCES:
        _create(conn, f"{source}_quarantine", QUARANTINE_COLUMNS)
    _create(conn, "load_log", LOAD_LOG_COLUMNS)
    _add_missing_columns(conn)
    conn.execute(f"UPDATE {qualified('load_log')} SET content_sha256 = NULL WHERE content_sha256 = ''")
    log = qualified("load_log")
    conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS load_log_content ON {log} (source, content_sha256)")


def _add_missing_columns(conn: Connection) -> None:
    present = conn.query(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ?", (RAW_SCHEMA,)
    )
    have = set(zip(present["table_name"], present["column_name"], strict=True))
    for source in QUARANTINED_SOURCES:
        for column in _ADDED_QUARANTINE_COLUMNS:
            if (f"{source}_quarantine", column) not in have:
                table = quarantine_table(source)
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {QUARANTINE_COLUMNS[column]}")


def next_load_id(conn: Connection) -> int:
    return int(conn.scalar(f"SELECT nextval('{RAW_SCHEMA}.load_id_seq')"))
