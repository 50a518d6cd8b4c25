"""API tokens: created once by `optimum token create`, stored only as their SHA-256, checked per request.

A token is 32 random bytes (URL-safe base64, prefixed `opt_`), so a plain SHA-256 is a safe way to store
it: there is nothing to brute-force. The store is `api_tokens.json` in the state folder (embedded), or the
table `optimum_api_tokens` of the warehouse database when the target is PostgreSQL (production).

Scopes: `predict` (the model endpoints), `interactions` (recording events), `admin` (everything).
The service re-reads the store when it meets a token it does not know, so a new token works without a
restart: the file when its modification time changed (a stat per unknown token), the table at most every
RELOAD_SECONDS (so a flood of bad tokens costs one query per interval).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCOPES = ("predict", "interactions", "admin")
TOKEN_PREFIX = "opt_"  # noqa: S105 -- the public prefix of every token, not a secret
RELOAD_SECONDS = 2.0
TABLE = "optimum_api_tokens"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a valid token belongs to: its name (logged, never the token) and scope."""

    name: str
    scope: str

    def allows(self, scope: str) -> bool:
        return self.scope in (scope, "admin")


class TokenExists(ValueError):
    pass


class FileTokenStore:
    """Token hashes in a JSON file in the state folder, written atomically and readable by the owner only."""

    def __init__(self, path: Path):
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def version(self) -> tuple[int, int, int] | None:
        """Changes with every write (each one replaces the file: a new inode)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def load(self) -> dict[str, Principal]:
        if not self.path.exists():
            return {}
        rows = json.loads(self.path.read_text())["tokens"]
        return {row["sha256"]: Principal(row["name"], row["scope"]) for row in rows}

    def add(self, name: str, scope: str, digest: str) -> None:
        rows = json.loads(self.path.read_text())["tokens"] if self.path.exists() else []
        if any(row["name"] == name for row in rows):
            raise TokenExists(f"a token named {name!r} already exists in {self.path}")
        rows.append({"name": name, "scope": scope, "sha256": digest, "created_at": datetime.now(UTC).isoformat()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_suffix(".tmp")
        staged.write_text(json.dumps({"tokens": rows}, indent=2))
        os.chmod(staged, 0o600)
        os.replace(staged, self.path)


class PostgresTokenStore:
    """Token hashes in the production database (the warehouse's PostgreSQL)."""

    def __init__(self, dsn: str):
        self.dsn = dsn

    def describe(self) -> str:
        return f"table {TABLE} of {self.dsn.rsplit('@', 1)[-1]}"

    def version(self) -> None:  # no cheap change marker: reload on a miss, rate-limited
        return None

    def _connect(self):
        import psycopg2

        connection = psycopg2.connect(self.dsn)
        with connection, connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (name text PRIMARY KEY, scope text NOT NULL, "
                "sha256 text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now())"
            )
        return connection

    def load(self) -> dict[str, Principal]:
        connection = self._connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT sha256, name, scope FROM {TABLE}")  # noqa: S608 -- TABLE is a module constant
                return {digest: Principal(name, scope) for digest, name, scope in cursor.fetchall()}
        finally:
            connection.close()

    def add(self, name: str, scope: str, digest: str) -> None:
        import psycopg2

        connection = self._connect()
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {TABLE} (name, scope, sha256) VALUES (%s, %s, %s)", (name, scope, digest))  # noqa: S608 -- TABLE is a module constant
        except psycopg2.errors.UniqueViolation as error:
            raise TokenExists(f"a token named {name!r} already exists in {self.describe()}") from error
        finally:
            connection.close()


TokenStore = FileTokenStore | PostgresTokenStore


def token_store(settings) -> TokenStore:
    """The production database when the warehouse is PostgreSQL, else the state folder."""
    if settings.target.value == "postgres":
        return PostgresTokenStore(settings.pg_dsn)
    return FileTokenStore(settings.home / "api_tokens.json")


def create_token(store: TokenStore, name: str, scope: str) -> str:
    """A new token for `name`; only its hash is stored, so this is the one time it can be read."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError("a token name is 1-64 letters, digits, '-', '_' or '.'")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.add(name, scope, token_hash(token))
    return token


class Authenticator:
    """Maps presented tokens to principals, reloading the store on a miss (rate-limited)."""

    def __init__(self, store: TokenStore, required: bool):
        self.store = store
        self.required = required
        self._principals: dict[str, Principal] = {}
        self._version: object = object()
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self.reload()

    def reload(self) -> None:
        version = self.store.version()
        if version is not None and version == self._version:
            return
        self._principals, self._version = self.store.load(), version

    def principal(self, token: str) -> Principal | None:
        digest = token_hash(token)
        found = self._principals.get(digest)
        if found is None and self._may_have_changed():
            with self._lock:
                self._checked = time.monotonic()
                self.reload()
            found = self._principals.get(digest)
        return found

    def _may_have_changed(self) -> bool:
        version = self.store.version()
        if version is not None:
            return version != self._version
        return time.monotonic() - self._checked >= RELOAD_SECONDS
