"""Backup files on a tiny hand-made state: what goes in, retention, and every way a backup is refused.

The full drill on materialized state is tests/integration/drill.py (embedded and production).
"""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import psycopg2
import pytest

from optimum.settings import Settings
from orchestration.backup import (
    BackupError,
    backup_name,
    create_backup,
    dagster_storage_dsn,
    prune_backups,
    restore_backup,
)
from orchestration.cli import main

MOMENT = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def state(tmp_path, monkeypatch) -> Settings:
    """A state folder with a DuckDB warehouse (table + view), a SQLite store with a path in it, a token file."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = Settings(home=tmp_path / "state", backup_dir=tmp_path / "backups")
    settings.ensure_dirs()
    with duckdb.connect(str(settings.duckdb_path)) as con:
        con.execute("CREATE SCHEMA marts; CREATE TABLE marts.sales AS SELECT range AS id FROM range(1000)")
        con.execute("CREATE VIEW marts.big_sales AS SELECT * FROM marts.sales WHERE id >= 500")
    store = sqlite3.connect(settings.mlflow_dir / "mlflow.db")
    store.execute("CREATE TABLE experiments (artifact_location VARCHAR(256))")
    store.execute("INSERT INTO experiments VALUES (?)", ((settings.mlflow_artifacts_dir / "optimum").as_uri(),))
    store.commit()
    store.close()
    (settings.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (settings.home / "tokens.json").write_text('{"api": "hashed"}')
    return settings


def _fresh(settings: Settings, home: Path) -> Settings:
    return Settings(home=home, backup_dir=settings.backup_dir)


def test_backup_round_trip_restores_every_part_into_a_fresh_folder(state, tmp_path):
    result = create_backup(state, now=MOMENT)
    assert result.path.name == "optimum-backup-20260301T030000Z.tar.gz"
    assert result.parts == ["duckdb", "state"]
    assert Path(f"{result.path}.sha256").read_text() == f"{result.sha256}  {result.path.name}\n"

    elsewhere = _fresh(state, tmp_path / "elsewhere")
    manifest = restore_backup(elsewhere, result.path)
    assert manifest["created_at"] == MOMENT.isoformat()
    with duckdb.connect(str(elsewhere.duckdb_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.sales").fetchone() == (1000,)
        assert con.execute("SELECT count(*) FROM marts.big_sales").fetchone() == (500,)
    assert (elsewhere.home / "tokens.json").read_text() == '{"api": "hashed"}'
    assert not (elsewhere.dagster_home / "dagster.yaml").exists(), "configuration is not state"
    # Absolute paths inside the SQLite stores now name the new folder.
    store = sqlite3.connect(elsewhere.mlflow_dir / "mlflow.db")
    assert store.execute("SELECT artifact_location FROM experiments").fetchone() == (
        (elsewhere.mlflow_artifacts_dir / "optimum").as_uri(),
    )
    store.close()


def test_restore_refuses_a_folder_that_is_not_fresh(state):
    result = create_backup(state, now=MOMENT)
    with pytest.raises(BackupError, match="is not empty: restore needs a fresh folder"):
        restore_backup(state, result.path)


def _rewrite(backup: Path, change) -> None:
    """Rebuild a backup's tar with `change(name, data) -> data | None` (None drops the member)."""
    members = []
    with tarfile.open(backup, "r:gz") as archive:
        for info in archive.getmembers():
            data = change(info.name, archive.extractfile(info).read())
            if data is not None:
                members.append((info.name, data))
    with tarfile.open(backup, "w:gz") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", "corrupt or partial"),
        ("flip_byte", "SHA-256 differs"),
        ("drop_manifest", "is partial: it has no manifest.json"),
        ("drop_member", "is partial: missing"),
        ("change_member", "checksum of duckdb/warehouse.duckdb differs"),
        ("not_gzip", "corrupt or partial"),
    ],
)
def test_restore_refuses_a_corrupt_or_partial_backup(state, tmp_path, damage, message):
    backup = create_backup(state, now=MOMENT).path
    sidecar = Path(f"{backup}.sha256")
    if damage == "truncate":
        backup.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])
        sidecar.unlink()  # an interrupted copy comes without its checksum file
    elif damage == "flip_byte":
        data = bytearray(backup.read_bytes())
        data[len(data) // 2] ^= 0xFF
        backup.write_bytes(bytes(data))
    elif damage == "not_gzip":
        backup.write_text("not a backup")
        sidecar.unlink()
    else:
        sidecar.unlink()  # the internal checksums must catch it on their own
        if damage == "drop_manifest":
            _rewrite(backup, lambda name, data: None if name == "manifest.json" else data)
        elif damage == "drop_member":
            _rewrite(backup, lambda name, data: None if name.endswith("tokens.json") else data)
        else:
            _rewrite(backup, lambda name, data: data + b"x" if name.endswith(".duckdb") else data)
    fresh = _fresh(state, tmp_path / "fresh")
    with pytest.raises(BackupError, match=message):
        restore_backup(fresh, backup)
    assert not fresh.duckdb_path.exists(), "nothing is written from a backup that failed verification"


def test_cli_restore_says_why_it_refuses(state, tmp_path, monkeypatch, capsys):
    backup = create_backup(state, now=MOMENT).path
    backup.write_bytes(gzip.compress(b"half a tar"))
    Path(f"{backup}.sha256").unlink()
    monkeypatch.setenv("OPTIMUM_HOME", str(tmp_path / "fresh"))
    assert main(["restore", str(backup)]) == 2
    assert "restore refused:" in capsys.readouterr().err


def test_retention_counts_back_from_the_newest_backup(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    days = [0, 3, 13, 14, 15, 40]
    for age in days:
        path = folder / backup_name(MOMENT - timedelta(days=age))
        path.write_text("x")
        Path(f"{path}.sha256").write_text("x")
    (folder / "notes.txt").write_text("not a backup")
    removed = prune_backups(folder, retention_days=14)
    assert [p.name for p in removed] == [backup_name(MOMENT - timedelta(days=d)) for d in (40, 15)]
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 2 * 4 + 1 and "notes.txt" in kept


def test_dagster_storage_dsn_reads_the_production_instance(tmp_path, monkeypatch):
    infra = Path(__file__).resolve().parents[2] / "infra" / "dagster.yaml"
    (tmp_path / "dagster.yaml").write_text(infra.read_text())
    for name, value in {
        "DAGSTER_PG_HOST": "db",
        "DAGSTER_PG_PORT": "5433",
        "DAGSTER_PG_USER": "dagster",
        "DAGSTER_PG_PASSWORD": "p@ss/word",
        "DAGSTER_PG_DB": "dagster",
    }.items():
        monkeypatch.setenv(name, value)
    assert dagster_storage_dsn(tmp_path) == "postgresql://dagster:p%40ss%2Fword@db:5433/dagster"
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert dagster_storage_dsn(tmp_path) is None


def test_postgres_databases_are_dumped_and_restored_only_into_empty_ones(tmp_path, new_pg_database, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    source = new_pg_database()
    con = psycopg2.connect(source)
    with con, con.cursor() as cur:
        cur.execute("CREATE SCHEMA marts; CREATE TABLE marts.sales AS SELECT generate_series(1, 250) AS id")
    con.close()
    settings = Settings(home=tmp_path / "state", backup_dir=tmp_path / "backups", target="postgres", pg_dsn=source)
    result = create_backup(settings, now=MOMENT)
    with tarfile.open(result.path) as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())
    # Without an MLflow server the registry lives in the warehouse database: one dump holds both.
    assert manifest["databases"] == {"warehouse": "databases/warehouse.pgdump"}

    with pytest.raises(BackupError, match="'warehouse' database is not empty"):
        restore_backup(Settings(home=tmp_path / "new", target="postgres", pg_dsn=source), result.path)
    target = new_pg_database()
    restore_backup(Settings(home=tmp_path / "new", target="postgres", pg_dsn=target), result.path)
    con = psycopg2.connect(target)
    with con.cursor() as cur:
        cur.execute("SELECT count(*), sum(id) FROM marts.sales")
        assert cur.fetchone() == (250, 250 * 251 // 2)
    con.close()
