"""Backups of what cannot be rebuilt from the landing zone, and their restore.

One backup is one gzip-compressed tar file, `optimum-backup-<UTC timestamp>.tar.gz`, beside a `.sha256` file
in `sha256sum` format. Inside:

- `databases/<part>.pgdump`: `pg_dump --format=custom` of each PostgreSQL database in use (production: the
  warehouse, the Dagster instance storage, the MLflow backend; a database shared by two parts is dumped once);
- `duckdb/warehouse.duckdb`: a transactionally consistent copy of the embedded warehouse (DuckDB's
  `COPY FROM DATABASE` from a read-only attachment, so the WAL is applied and no writer is disturbed);
- `files/<part>/...`: the state folder (Dagster's SQLite storage, the local MLflow store and artifacts, any
  token store kept there), `DAGSTER_HOME` when it lies elsewhere, and the MLflow server's artifact folder
  when one is configured. SQLite databases are copied with SQLite's online backup API, never byte-wise.
- `manifest.json`, written last: what each part is and the SHA-256 and size of every other member.

A backup without the manifest is partial (the writer was interrupted); a member whose checksum differs or a
file whose `.sha256` differs is corrupt. `restore_backup` checks all of that before it writes anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import psycopg2
import yaml

from optimum.settings import Settings, Target

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PREFIX = "optimum-backup-"
SUFFIX = ".tar.gz"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
SQLITE_MAGIC = b"SQLite format 3\x00"
# Files that are part of a database already copied consistently (or locks that must not travel).
TRANSIENT_SUFFIXES = ("-journal", "-wal", "-shm", ".wal", ".lock", ".tmp")
CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup could not be written, or a backup file cannot be trusted for a restore."""


@dataclass(frozen=True)
class Sources:
    """Where the platform keeps state right now, by part name; the same names are used to restore."""

    databases: dict[str, str] = field(default_factory=dict)  # part -> libpq DSN
    duckdb: Path | None = None
    folders: dict[str, Path] = field(default_factory=dict)  # part -> folder
    # Never copied from the folders: the DuckDB file (copied on its own), the backups themselves, and the
    # instance's dagster.yaml, which is deployed configuration (the image's, or written by the CLI), not state.
    skip: tuple[Path, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Sources:
        databases: dict[str, str] = {}
        candidates = {
            "warehouse": settings.pg_dsn if settings.target is Target.POSTGRES else None,
            "dagster": dagster_storage_dsn(dagster_home(settings)),
            "mlflow": settings.mlflow_backend_dsn or _postgres_store(settings.tracking_uri),
        }
        for part, dsn in candidates.items():
            if dsn and libpq_dsn(dsn) not in {libpq_dsn(known) for known in databases.values()}:
                databases[part] = dsn
        folders = {"state": settings.home}
        if not dagster_home(settings).is_relative_to(settings.home):
            folders["dagster_home"] = dagster_home(settings)
        if settings.mlflow_artifacts_destination:
            folders["mlflow_artifacts"] = Path(settings.mlflow_artifacts_destination).expanduser().resolve()
        return cls(
            databases=databases,
            duckdb=settings.duckdb_path if settings.target is Target.DUCKDB else None,
            folders=folders,
            skip=(
                settings.duckdb_path,
                settings.backup_dir,
                dagster_home(settings) / "dagster.yaml",
                dagster_home(settings) / "schema.lock",  # use_dagster_home's lock file: no state
            ),
        )


@dataclass(frozen=True)
class BackupResult:
    path: Path
    sha256: str
    size_bytes: int
    duration_s: float
    parts: list[str]
    removed: list[Path]


# --- where the state is --------------------------------------------------------------------------------


def dagster_home(settings: Settings) -> Path:
    """The Dagster instance folder: $DAGSTER_HOME in production, under the state folder when embedded."""
    return Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home).resolve()


def _config_value(value) -> str:
    """A dagster.yaml scalar, either given directly or as `{env: NAME}`."""
    if isinstance(value, dict) and "env" in value:
        return os.environ.get(value["env"], "")
    return "" if value is None else str(value)


def dagster_storage_dsn(home: Path) -> str | None:
    """The PostgreSQL DSN of the instance's storage as its dagster.yaml declares it; None for SQLite."""
    config_file = home / "dagster.yaml"
    config = yaml.safe_load(config_file.read_text()) if config_file.exists() else None
    postgres = ((config or {}).get("storage") or {}).get("postgres")
    if not postgres:
        return None
    if "postgres_url" in postgres:
        return _config_value(postgres["postgres_url"])
    db = {key: _config_value(value) for key, value in postgres["postgres_db"].items()}
    password = f":{quote(db['password'], safe='')}" if db.get("password") else ""
    port = db.get("port") or "5432"
    return f"postgresql://{quote(db['username'], safe='')}{password}@{db['hostname']}:{port}/{db['db_name']}"


def _postgres_store(tracking_uri: str) -> str | None:
    return tracking_uri if tracking_uri.startswith(("postgresql", "postgres:")) else None


def libpq_dsn(dsn: str) -> str:
    """The DSN as libpq tools take it: SQLAlchemy's `+driver` dropped."""
    scheme, rest = dsn.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


def _pg_command_env(dsn: str) -> tuple[str, dict[str, str]]:
    """(DSN without password, environment with PGPASSWORD): a password on a command line shows up in `ps`."""
    parsed = urlparse(libpq_dsn(dsn))
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = unquote(parsed.password)
        netloc = parsed.netloc.replace(f":{parsed.password}@", "@", 1)
        parsed = parsed._replace(netloc=netloc)
    return parsed.geturl(), env


def _run_pg_tool(command: list[str], dsn: str) -> None:
    safe_dsn, env = _pg_command_env(dsn)
    result = subprocess.run([*command, f"--dbname={safe_dsn}"], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed on {safe_dsn}: {result.stderr.strip()}")


# --- writing a backup ----------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def _copy_sqlite(source: Path, destination: Path) -> None:
    """A consistent copy while writers may be active (SQLite's online backup API)."""
    source_db = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
    target_db = sqlite3.connect(destination)
    try:
        source_db.backup(target_db)
    finally:
        target_db.close()
        source_db.close()


def _copy_duckdb(source: Path, destination: Path) -> None:
    """A consistent copy of a DuckDB file; fails clearly while another process holds it for writing."""
    import duckdb

    try:
        with duckdb.connect(str(destination)) as target:
            escaped = str(source).replace("'", "''")
            target.execute(f"ATTACH '{escaped}' AS backup_source (READ_ONLY)")
            target.execute(f"COPY FROM DATABASE backup_source TO {destination.stem}")
    except duckdb.IOException as error:
        raise BackupError(f"cannot read the warehouse {source} (is a run writing to it?): {error}") from error


def _copy_folder(source: Path, destination: Path, skip: tuple[Path, ...]) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.name.endswith(TRANSIENT_SUFFIXES):
            continue
        if any(path == s or path.is_relative_to(s) for s in skip):
            continue
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        if _is_sqlite(path):
            _copy_sqlite(path, target)
        else:
            shutil.copy2(path, target)


def _stage(sources: Sources, staging: Path) -> dict:
    """Copy every part into `staging`; returns the manifest's description of the parts."""
    parts: dict = {"databases": {}, "duckdb": None, "folders": {}}
    for part, dsn in sources.databases.items():
        member = f"databases/{part}.pgdump"
        (staging / "databases").mkdir(exist_ok=True)
        _run_pg_tool(["pg_dump", "--format=custom", f"--file={staging / member}"], dsn)
        parts["databases"][part] = member
    if sources.duckdb is not None and sources.duckdb.exists():
        member = f"duckdb/{sources.duckdb.name}"
        (staging / "duckdb").mkdir()
        _copy_duckdb(sources.duckdb, staging / member)
        parts["duckdb"] = member
    for part, folder in sources.folders.items():
        member = f"files/{part}"
        (staging / member).mkdir(parents=True)
        if folder.exists():
            _copy_folder(folder, staging / member, sources.skip)
        parts["folders"][part] = member
    return parts


def backup_name(moment: datetime) -> str:
    return f"{PREFIX}{moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)}{SUFFIX}"


def backup_time(path: Path) -> datetime | None:
    """The timestamp in a backup's file name; None for files that are not backups."""
    name = path.name
    if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
        return None
    try:
        return datetime.strptime(name[len(PREFIX) : -len(SUFFIX)], TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def create_backup(settings: Settings, now: datetime | None = None) -> BackupResult:
    """Write one backup into settings.backup_dir, then apply the retention."""
    started = time.perf_counter()
    moment = now or datetime.now(UTC)
    sources = Sources.from_settings(settings)
    settings.backup_dir.mkdir(parents=True, exist_ok=True)
    final = settings.backup_dir / backup_name(moment)
    if final.exists():
        raise BackupError(f"{final} exists already")
    partial = final.with_name(final.name + ".partial")
    with tempfile.TemporaryDirectory(prefix="optimum-backup-", dir=settings.backup_dir) as tmp:
        staging = Path(tmp)
        parts = _stage(sources, staging)
        members = {
            path.relative_to(staging).as_posix(): {"sha256": sha256_file(path), "size": path.stat().st_size}
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        manifest = {
            "format": FORMAT_VERSION,
            "created_at": moment.astimezone(UTC).isoformat(),
            "target": settings.target.value,
            "home": str(settings.home),
            **parts,
            "members": members,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        with tarfile.open(partial, "w:gz") as archive:
            for member in [*members, MANIFEST]:  # the manifest last: its presence marks a complete file
                archive.add(staging / member, arcname=member, recursive=False)
    checksum = sha256_file(partial)
    partial.rename(final)
    checksum_file(final).write_text(f"{checksum}  {final.name}\n")
    removed = prune_backups(settings.backup_dir, settings.backup_retention_days)
    return BackupResult(
        path=final,
        sha256=checksum,
        size_bytes=final.stat().st_size,
        duration_s=time.perf_counter() - started,
        parts=[*parts["databases"], *(["duckdb"] if parts["duckdb"] else []), *parts["folders"]],
        removed=removed,
    )


def checksum_file(backup: Path) -> Path:
    return backup.with_name(backup.name + ".sha256")


def prune_backups(backup_dir: Path, retention_days: int) -> list[Path]:
    """Delete backups older than `retention_days` before the newest one (whose own date is the clock)."""
    dated = {path: moment for path in backup_dir.iterdir() if (moment := backup_time(path)) is not None}
    if not dated:
        return []
    cutoff = max(dated.values()) - timedelta(days=retention_days)
    removed = sorted(path for path, moment in dated.items() if moment < cutoff)
    for path in removed:
        path.unlink()
        checksum_file(path).unlink(missing_ok=True)
    return removed


# --- restoring -----------------------------------------------------------------------------------------


def read_verified(backup: Path, into: Path) -> dict:
    """Extract `backup` into `into` and return its manifest, or raise BackupError saying what is wrong."""
    if not backup.is_file():
        raise BackupError(f"no backup file at {backup}")
    sidecar = checksum_file(backup)
    if sidecar.exists():
        expected = sidecar.read_text().split()[0]
        if sha256_file(backup) != expected:
            raise BackupError(f"{backup} is corrupt: its SHA-256 differs from {sidecar.name}")
    try:
        with tarfile.open(backup, "r:gz") as archive:
            names = archive.getnames()
            if MANIFEST not in names:
                raise BackupError(f"{backup} is partial: it has no {MANIFEST} (the backup was interrupted)")
            archive.extractall(into, filter="data")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise BackupError(f"{backup} is corrupt or partial: {type(error).__name__}: {error}") from error
    manifest = json.loads((into / MANIFEST).read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{backup} has format {manifest.get('format')!r}; this version reads {FORMAT_VERSION}")
    extracted = {p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file()} - {MANIFEST}
    if missing := set(manifest["members"]) - extracted:
        raise BackupError(f"{backup} is partial: missing {sorted(missing)}")
    if unexpected := extracted - set(manifest["members"]):
        raise BackupError(f"{backup} holds files its manifest does not list: {sorted(unexpected)}")
    for member, facts in manifest["members"].items():
        if sha256_file(into / member) != facts["sha256"]:
            raise BackupError(f"{backup} is corrupt: the checksum of {member} differs from the manifest")
    return manifest


def _user_relations(dsn: str) -> int:
    con = psycopg2.connect(libpq_dsn(dsn), connect_timeout=10)
    try:
        with con.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
            )
            return cur.fetchone()[0]
    finally:
        con.close()


def _is_fresh(folder: Path, skip: tuple[Path, ...]) -> bool:
    """Holds no file a restore would write (configuration such as dagster.yaml may already be there)."""
    return not any(path.is_file() and path not in skip for path in folder.rglob("*"))


def _relocate_sqlite_paths(database: Path, old: Path, new: Path) -> None:
    """Point absolute paths inside a restored SQLite store (MLflow's artifact locations) at the new folder."""
    replacements = [(old.as_uri(), new.as_uri()), (str(old), str(new))]
    con = sqlite3.connect(database)
    try:
        tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [row[1] for row in con.execute(f'PRAGMA table_info("{table}")') if "CHAR" in row[2].upper()]
            for column, (before, after) in ((c, r) for c in columns for r in replacements):
                con.execute(
                    f'UPDATE "{table}" SET "{column}" = ? || substr("{column}", ?) WHERE "{column}" LIKE ? ESCAPE ?',  # noqa: S608 -- names come from sqlite_master, values are bound
                    (after, len(before) + 1, before.replace("\\", "\\\\").replace("%", "\\%") + "%", "\\"),
                )
        con.commit()
    finally:
        con.close()


def _check_targets(manifest: dict, sources: Sources) -> None:
    """Every part of the backup has somewhere empty to go; raises before anything is written."""
    problems = []
    for part in manifest["databases"]:
        if part not in sources.databases:
            problems.append(f"the backup holds the {part!r} database, but these settings use no PostgreSQL for it")
        elif (count := _user_relations(sources.databases[part])) > 0:
            problems.append(f"the {part!r} database is not empty ({count} relations): restore needs an empty one")
    for part in manifest["folders"]:
        if part not in sources.folders:
            problems.append(f"the backup holds the folder {part!r}, which these settings do not use")
        elif not _is_fresh(sources.folders[part], sources.skip):
            problems.append(f"{sources.folders[part]} is not empty: restore needs a fresh folder")
    if manifest["duckdb"] and sources.duckdb is None:
        problems.append("the backup holds a DuckDB warehouse, but OPTIMUM_TARGET is not duckdb")
    if problems:
        raise BackupError("cannot restore: " + "; ".join(problems))


def restore_backup(settings: Settings, backup: Path) -> dict:
    """Restore `backup` into the empty databases and fresh folders the settings name; returns its manifest."""
    sources = Sources.from_settings(settings)
    with tempfile.TemporaryDirectory(prefix="optimum-restore-") as tmp:
        unpacked = Path(tmp)
        manifest = read_verified(backup, unpacked)
        _check_targets(manifest, sources)
        for part, member in manifest["databases"].items():
            _run_pg_tool(
                [
                    "pg_restore",
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--single-transaction",
                    str(unpacked / member),
                ],
                sources.databases[part],
            )
        for part, member in manifest["folders"].items():
            target = sources.folders[part]
            target.mkdir(parents=True, exist_ok=True)
            if (unpacked / member).exists():  # a folder that held no files has no members
                shutil.copytree(unpacked / member, target, dirs_exist_ok=True)
        if manifest["duckdb"]:
            sources.duckdb.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(unpacked / manifest["duckdb"], sources.duckdb)
    old_home = Path(manifest["home"])
    if old_home != settings.home:
        for database in _sqlite_files(settings.home):
            _relocate_sqlite_paths(database, old_home, settings.home)
    return manifest


def _sqlite_files(folder: Path) -> Iterator[Path]:
    return (path for path in folder.rglob("*") if path.is_file() and _is_sqlite(path))
