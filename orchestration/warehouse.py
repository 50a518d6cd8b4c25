"""A small warehouse adapter with one interface over DuckDB (embedded) and PostgreSQL (production).

Ingestion needs three things from a warehouse: run DDL, read a query into a DataFrame, and append a
DataFrame to a table inside a transaction. Everything else is dbt's job.
"""

from __future__ import annotations

import io
import time
import uuid
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import psycopg2

from optimum.settings import Settings, Target


class Connection(ABC):
    """One open transaction on the warehouse."""

    @abstractmethod
    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame: ...

    @abstractmethod
    def append(self, table: str, frame: pd.DataFrame) -> None:
        """Insert the frame's rows into an existing table; columns are matched by name."""

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        frame = self.query(sql, params)
        return None if frame.empty else frame.iat[0, 0]

    @abstractmethod
    def lock(self, name: str) -> None:
        """Hold an exclusive lock called `name` until this transaction ends (writers of one thing queue up)."""

    def temp_table(self, name: str, frame: pd.DataFrame) -> str:
        """A temporary table holding the frame (all columns text), to join against; dropped with the connection."""
        columns = ", ".join(f'"{c}" VARCHAR' for c in frame.columns)
        self.execute(f"DROP TABLE IF EXISTS {name}")
        self.execute(f"CREATE TEMPORARY TABLE {name} ({columns})")
        self.append(name, frame.astype("str"))
        return name


class _DuckDBConnection(Connection):
    """DuckDB admits one writing process per file and the warehouse holds it for the whole transaction,
    so `lock` has nothing left to do."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self._con = con

    def lock(self, name):
        pass

    def execute(self, sql, params=()):
        self._con.execute(sql, list(params))

    def query(self, sql, params=()):
        return self._con.execute(sql, list(params)).df()

    def append(self, table, frame):
        if frame.empty:
            return
        self._con.register("_optimum_append", frame)
        try:
            columns = ", ".join(f'"{c}"' for c in frame.columns)
            self._con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _optimum_append")  # noqa: S608 -- columns are the frame's own, checked by the contract
        finally:
            self._con.unregister("_optimum_append")


class _PostgresConnection(Connection):
    def __init__(self, con):
        self._con = con

    def lock(self, name):
        self.execute("SELECT pg_advisory_xact_lock(?)", (zlib.crc32(f"optimum.{name}".encode()),))

    def execute(self, sql, params=()):
        with self._con.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params or None)  # None: a literal % needs no escaping

    def query(self, sql, params=()):
        with self._con.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params or None)  # None: a literal % needs no escaping
            rows = cur.fetchall()
            columns = [d.name for d in cur.description]
        return pd.DataFrame.from_records(rows, columns=columns)

    def append(self, table, frame):
        """COPY is an order of magnitude faster than INSERT for the million-row landing files.

        NULL is written as a random token no value can equal, so `\\N`, `NULL` and empty strings arrive as
        the text they are, exactly as on DuckDB.
        """
        if frame.empty:
            return
        null = f"NULL-{uuid.uuid4().hex[:20]}"  # pandas cuts float na_rep to 32 characters
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, na_rep=null, date_format="%Y-%m-%d %H:%M:%S.%f")
        buffer.seek(0)
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        with self._con.cursor() as cur:
            cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '{null}')", buffer)


def _sql_type(dtype) -> str:
    """The portable column type for a pandas dtype (DuckDB and PostgreSQL share these names)."""
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "BIGINT"
    if pd.api.types.is_float_dtype(dtype):
        return "DOUBLE PRECISION"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "TIMESTAMP"
    return "VARCHAR"


class Warehouse(ABC):
    """Opens short transactions; DuckDB allows one writer per file, so nothing holds a connection open."""

    @staticmethod
    def from_settings(settings: Settings) -> Warehouse:
        if settings.target is Target.POSTGRES:
            return PostgresWarehouse(settings.pg_dsn)
        return DuckDBWarehouse(settings.duckdb_path)

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Commit when the block succeeds, roll back when it raises."""

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        with self.transaction() as conn:
            return conn.query(sql, params)

    def replace_table(self, table: str, frame: pd.DataFrame) -> None:
        """Swap a whole table for the frame in one transaction (batch outputs are rebuilt, never appended)."""
        schema = table.split(".")[0]
        columns = ", ".join(f'"{name}" {_sql_type(dtype)}' for name, dtype in frame.dtypes.items())
        with self.transaction() as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE {table} ({columns})")
            conn.append(table, frame)

    def table_exists(self, schema: str, table: str) -> bool:
        sql = "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
        with self.transaction() as conn:
            return conn.scalar(sql, (schema, table)) > 0

    def row_count(self, table: str) -> int:
        with self.transaction() as conn:
            return int(conn.scalar(f"SELECT count(*) FROM {table}"))  # noqa: S608 -- callers pass table names from code, never user input

    def column_types(self, table: str) -> dict[str, str]:
        """Column name -> the warehouse's type name, in table order."""
        schema, name = table.split(".")
        columns = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            (schema, name),
        )
        return dict(zip(columns["column_name"], columns["data_type"], strict=True))


class DuckDBWarehouse(Warehouse):
    LOCK_WAIT_S = 120.0  # another process (an overlapping run, dbt) holds the file: wait this long for it

    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.LOCK_WAIT_S
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @contextmanager
    def transaction(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connect()
        try:
            con.execute("BEGIN TRANSACTION")
            yield _DuckDBConnection(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()


class PostgresWarehouse(Warehouse):
    def __init__(self, dsn: str):
        self.dsn = dsn

    @contextmanager
    def transaction(self):
        con = psycopg2.connect(self.dsn)
        try:
            with con:  # psycopg2: commit on success, rollback on error
                yield _PostgresConnection(con)
        finally:
            con.close()
