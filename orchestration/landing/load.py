"""Idempotent, exclusive loading of landing files (and scraped leads) into the warehouse's raw schema.

A file is identified by the SHA-256 of its bytes. Each file loads in one transaction that first claims
its hash in raw.load_log (unique per source and hash) and takes the source's lock, then writes its good
rows, its quarantined rows and the claim together: a crash never leaves half a file behind, a re-run
adds nothing, and two overlapping runs never load a file twice (the second sees the claim and skips).

Later deliveries: a key delivered again with other values is a correction and becomes the key's new
version (staging picks the latest); with the same values it is a duplicate. Sales and interactions
quarantined for an unknown product are re-validated whenever the load runs, and load (keeping their
original file and line) once their product has arrived.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from optimum.settings import LandingSettings
from orchestration.landing.contract import INTERACTIONS, LEAD_STATUS, PRODUCTS, SALES, Reason, Source
from orchestration.landing.raw_tables import RAW_COLUMNS, ensure_raw_schema, next_load_id, qualified, quarantine_table
from orchestration.landing.read import printable
from orchestration.landing.validate import (
    DateWindow,
    ParsedFile,
    ValidatedRows,
    file_sha256,
    parse_landing_file,
    row_keys,
    validate_rows,
    value_fingerprints,
)
from orchestration.warehouse import Connection, Warehouse
from serving.spool import close_orphans


@dataclass
class FileLoad:
    """What one delivered file gave: rows in = loaded + quarantined."""

    name: str
    rows_loaded: int
    rows_quarantined: int
    unreadable: bool = False

    @property
    def quarantine_rate(self) -> float:
        total = self.rows_loaded + self.rows_quarantined
        return self.rows_quarantined / total if total else 0.0


@dataclass
class LoadReport:
    """What one load did, for asset metadata and the CLI."""

    source: str
    folder_found: bool = True
    files_seen: int = 0
    files_loaded: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)  # content already loaded (by this run or another)
    files_unreadable: list[str] = field(default_factory=list)
    deliveries: list[FileLoad] = field(default_factory=list)
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_corrected: int = 0  # loaded rows that supersede an earlier delivery of their key
    rows_resolved: int = 0  # quarantined rows taken in because their product arrived
    quarantined_by_reason: Counter = field(default_factory=Counter)
    quarantined_by_file: Counter = field(default_factory=Counter)
    unit: str = "file"  # what files_seen counts: landing files, or scraped pages for leads

    @property
    def summary(self) -> str:
        if not self.folder_found:
            return f"{self.source}: no landing folder, skipped"
        text = (
            f"{self.source}: {_count(self.files_seen, self.unit)} seen, {len(self.files_loaded)} loaded, "
            f"{len(self.files_skipped)} already loaded; {_count(self.rows_loaded, 'row')} loaded, "
            f"{self.rows_quarantined:,} quarantined"
        )
        extras = [
            _count(len(self.files_unreadable), "unreadable file") if self.files_unreadable else "",
            _count(self.rows_corrected, "correction") if self.rows_corrected else "",
            f"{_count(self.rows_resolved, 'late row')} resolved" if self.rows_resolved else "",
        ]
        return "; ".join([text, *filter(None, extras)])

    def add(self, name: str, result: ValidatedRows, unreadable: bool) -> None:
        self.files_loaded.append(name)
        if unreadable:
            self.files_unreadable.append(name)
        self.deliveries.append(FileLoad(name, len(result.good), len(result.quarantined), unreadable))
        self.rows_loaded += len(result.good)
        self.rows_quarantined += len(result.quarantined)
        self.rows_corrected += result.corrections
        self.quarantined_by_reason.update(result.quarantined["reason"].tolist())
        if len(result.quarantined):
            self.quarantined_by_file[name] += len(result.quarantined)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _now() -> datetime:
    """Audit time of a load (bookkeeping only; no business logic depends on it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _landing_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _with_load_columns(frame: pd.DataFrame, file_name: str, load_id: int, loaded_at: datetime) -> pd.DataFrame:
    out = frame.copy()
    if "_source_line" in out:
        if "_source_file" not in out:
            out["_source_file"] = file_name
    else:
        out["source_file"] = file_name
    out["_load_id"] = load_id
    out["_loaded_at"] = loaded_at
    return out


def _record_load(
    conn: Connection, load_id: int, source: str, file_name: str, sha: str | None, good: int, bad: int
) -> None:
    log = pd.DataFrame(
        [
            {
                "load_id": load_id,
                "source": source,
                "source_file": file_name,
                "content_sha256": sha,
                "rows_loaded": good,
                "rows_quarantined": bad,
                "loaded_at": _now(),
            }
        ]
    )
    conn.append(qualified("load_log"), log)


_DATE_COLUMN = {SALES.name: "order_date", INTERACTIONS.name: "event_at", LEAD_STATUS.name: "changed_at"}


class _Loaded:
    """What the warehouse already holds for one source, kept current as files load (by us or another run)."""

    def __init__(self, source: Source, landing: LandingSettings):
        self.source = source
        self.landing = landing
        self.max_load_id = -1
        self.keys = pd.Index([])
        self.first_date = self.last_date = None
        self.known_products = pd.Index([])

    def refresh(self, conn: Connection) -> None:
        """Catch up with rows loaded since the last look (cheap when nothing changed)."""
        table = qualified(self.source.raw_table)
        products = conn.query(f"SELECT DISTINCT product_id FROM {qualified('products')}")
        self.known_products = pd.Index(products["product_id"])
        if self.source is PRODUCTS:
            return
        # every write to the raw table is logged under the source's lock: the small log answers "anything new?"
        log = qualified("load_log")
        latest = conn.scalar(f"SELECT max(load_id) FROM {log} WHERE source = ?", (self.source.name,))
        if latest is None or pd.isna(latest) or int(latest) <= self.max_load_id:
            return
        date = _DATE_COLUMN[self.source.name]
        new = conn.query(
            f"SELECT {', '.join(self.source.key)}, {date} FROM {table} WHERE _load_id > ?", (self.max_load_id,)
        )
        self._take(new, int(latest))

    def loaded(self, good: pd.DataFrame, load_id: int) -> None:
        """Our own load, taken in without reading it back: under the source's lock nobody loaded in between."""
        if self.source is not PRODUCTS:
            self._take(good, load_id)

    def _take(self, rows: pd.DataFrame, load_id: int) -> None:
        self.keys = self.keys.append(pd.Index(row_keys(rows, self.source)))  # repeats are harmless to isin
        dates = pd.to_datetime(rows[_DATE_COLUMN[self.source.name]])
        self.first_date = min(filter(pd.notna, [self.first_date, dates.min()]), default=None)
        self.last_date = max(filter(pd.notna, [self.last_date, dates.max()]), default=None)
        self.max_load_id = load_id

    def date_window(self) -> DateWindow:
        return DateWindow(self.landing.date_years_before, self.landing.date_days_after, self.first_date, self.last_date)

    def latest_versions(self, conn: Connection, rows: pd.DataFrame) -> pd.Series:
        """Fingerprints of the latest loaded version of every key of `rows` loaded before (usually none)."""
        if self.source is PRODUCTS:
            return pd.Series(dtype="str")
        keys = row_keys(rows, self.source)
        colliding = rows.loc[keys.isin(self.keys), list(self.source.key)].drop_duplicates()
        if colliding.empty:
            return pd.Series(dtype="str")
        temp = conn.temp_table("_optimum_keys", colliding)
        match = " AND ".join(f"r.{k} = t.{k}" for k in self.source.key)
        versions = conn.query(f"SELECT r.* FROM {qualified(self.source.raw_table)} r JOIN {temp} t ON {match}")
        conn.execute(f"DROP TABLE {temp}")
        latest = versions.sort_values(["_load_id", "_source_line"]).drop_duplicates(list(self.source.key), keep="last")
        return pd.Series(
            value_fingerprints(latest, self.source).to_numpy(), index=row_keys(latest, self.source).to_numpy()
        )


def _already_loaded(conn: Connection, source: Source, sha: str) -> bool:
    sql = f"SELECT count(*) FROM {qualified('load_log')} WHERE source = ? AND content_sha256 = ?"
    return int(conn.scalar(sql, (source.name, sha))) > 0


def load_source(
    warehouse: Warehouse, landing_dir: Path, source: Source, landing: LandingSettings | None = None
) -> LoadReport:
    """Load every new file of one landing folder; products must be loaded before sales and interactions."""
    report = LoadReport(source.name)
    folder = Path(landing_dir) / source.name
    loaded = _Loaded(source, landing or LandingSettings())
    with warehouse.transaction() as conn:
        ensure_raw_schema(conn)
        hashes = set(
            conn.query(f"SELECT content_sha256 FROM {qualified('load_log')} WHERE source = ?", (source.name,))[
                "content_sha256"
            ]
        )
    if source is not PRODUCTS:
        report.rows_resolved = resolve_late_rows(warehouse, source, loaded)
    if not folder.is_dir():
        report.folder_found = False
        return report
    close_orphans(folder)  # spool files the service left open when it died hold acknowledged events
    for path in _landing_files(folder):
        report.files_seen += 1
        name = printable(path.name)
        data = path.read_bytes()
        sha = file_sha256(data)
        if sha in hashes:
            report.files_skipped.append(name)
            continue
        parsed = parse_landing_file(name, data, source)
        with warehouse.transaction() as conn:
            conn.lock(f"load.{source.name}")
            if _already_loaded(conn, source, sha):  # an overlapping run took it meanwhile
                report.files_skipped.append(name)
                continue
            loaded.refresh(conn)
            result = validate_rows(
                parsed, source, loaded.known_products, loaded.latest_versions(conn, parsed.rows), loaded.date_window()
            )
            load_id = next_load_id(conn)
            _record_load(conn, load_id, source.name, name, sha, len(result.good), len(result.quarantined))
            loaded_at = _now()
            conn.append(qualified(source.raw_table), _with_load_columns(result.good, name, load_id, loaded_at))
            conn.append(quarantine_table(source), _with_load_columns(result.quarantined, name, load_id, loaded_at))
            loaded.loaded(result.good, load_id)
        hashes.add(sha)
        report.add(name, result, parsed.unreadable)
    return report


def resolve_late_rows(warehouse: Warehouse, source: Source, loaded: _Loaded) -> int:
    """Load quarantined unknown-product rows whose product has arrived; mark them resolved. Returns how many."""
    table = quarantine_table(source)
    with warehouse.transaction() as conn:
        conn.lock(f"load.{source.name}")
        waiting = conn.query(
            f"SELECT source_file, source_line, raw_record, fields_json, _load_id FROM {table} "
            "WHERE reason = ? AND resolved_load_id IS NULL AND fields_json IS NOT NULL",
            (Reason.UNKNOWN_PRODUCT_ID.value,),
        )
        if waiting.empty:
            return 0
        loaded.refresh(conn)
        fields = pd.DataFrame([json.loads(text) for text in waiting["fields_json"]], columns=list(source.columns))
        arrived = fields["product_id"].isin(loaded.known_products).to_numpy()
        if not arrived.any():
            return 0
        waiting, fields = waiting[arrived].reset_index(drop=True), fields[arrived].reset_index(drop=True)
        rows = fields.astype("str").assign(
            source_line=waiting["source_line"].astype("int64"),
            raw_record=waiting["raw_record"],
            source_file=waiting["source_file"],
        )
        parsed = ParsedFile("quarantine", "", rows, pd.DataFrame(columns=["source_line"]))
        result = validate_rows(
            parsed, source, loaded.known_products, loaded.latest_versions(conn, rows), loaded.date_window()
        )
        if result.good.empty:
            return 0
        load_id = next_load_id(conn)
        _record_load(conn, load_id, source.name, "(late rows from quarantine)", None, len(result.good), 0)
        conn.append(qualified(source.raw_table), _with_load_columns(result.good, "", load_id, _now()))
        taken = waiting.merge(
            result.good[["_source_file", "_source_line"]],
            left_on=["source_file", "source_line"],
            right_on=["_source_file", "_source_line"],
        )[["_load_id", "source_file", "source_line"]]
        temp = conn.temp_table("_optimum_resolved", taken)
        conn.execute(
            f"UPDATE {table} SET resolved_load_id = ? FROM {temp} t "
            f"WHERE {table}._load_id = CAST(t._load_id AS BIGINT) AND {table}.source_file = t.source_file "
            f"AND {table}.source_line = CAST(t.source_line AS BIGINT)",
            (load_id,),
        )
        conn.execute(f"DROP TABLE {temp}")
        return len(result.good)


def _observation_hash(lead: dict, fields: list[str]) -> str:
    """One observation per page (or place) per content per scrape day: a re-scrape the same day adds
    nothing, the next day's scrape records that the lead was still there."""
    content = {k: lead[k] for k in fields if k != "scraped_at"}
    content["scraped_on"] = str(lead["scraped_at"])[:10]
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


_BAD_PAGE_KEY = ["source_file", "reason", "detail"]  # a bad page already quarantined is not added again


def load_leads(warehouse: Warehouse, leads: list[dict], quarantined: list[dict], table: str = "leads") -> LoadReport:
    """Append scraped leads (and bad pages) not seen before; a re-scrape of an unchanged site the same day
    adds nothing. `table` is raw.leads (directory crawler) or raw.place_results (Places API)."""
    fields = [name for name in RAW_COLUMNS[table] if not name.startswith("_")]
    report = LoadReport(table, files_seen=len(leads) + len(quarantined), unit="page")
    frame = pd.DataFrame(leads, columns=fields)
    frame["scraped_at"] = pd.to_datetime(frame["scraped_at"], utc=True).dt.tz_localize(None)
    frame["review_count"] = frame["review_count"].astype("Int64")
    frame["rating"] = frame["rating"].astype("float64")
    frame["_content_hash"] = [_observation_hash(lead, fields) for lead in leads]
    bad = pd.DataFrame(
        {
            "source_file": [q["source_url"] for q in quarantined],
            "source_line": pd.Series([None] * len(quarantined), dtype="Int64"),
            "reason": [str(q["reason"]) for q in quarantined],
            "detail": [q["detail"] for q in quarantined],
            "raw_record": [q.get("raw_snippet", "") for q in quarantined],
        },
        columns=["source_file", "source_line", "reason", "detail", "raw_record"],
    ).astype({column: "str" for column in _BAD_PAGE_KEY + ["raw_record"]})
    with warehouse.transaction() as conn:
        ensure_raw_schema(conn)
        seen = pd.Index(conn.query(f"SELECT DISTINCT _content_hash FROM {qualified(table)}")["_content_hash"])  # noqa: S608 -- table from the landing contract
        new = frame[~frame["_content_hash"].isin(seen)].drop_duplicates("_content_hash")
        known_bad = conn.query(f"SELECT {', '.join(_BAD_PAGE_KEY)} FROM {quarantine_table(table)}").astype("str")  # noqa: S608 -- columns and table from the code
        bad = bad.merge(known_bad, how="left", indicator=True).query("_merge == 'left_only'").drop(columns="_merge")
        if len(new) or len(bad):
            load_id = next_load_id(conn)
            loaded_at = _now()
            conn.append(qualified(table), new.assign(_load_id=load_id, _loaded_at=loaded_at))
            conn.append(quarantine_table(table), bad.assign(_load_id=load_id, _loaded_at=loaded_at))
            _record_load(conn, load_id, table, "scrape", None, len(new), len(bad))
    report.rows_loaded = len(new)
    report.files_loaded = new["source_url"].tolist()
    report.files_skipped = frame.loc[~frame.index.isin(new.index), "source_url"].tolist()
    report.rows_quarantined = len(bad)
    report.quarantined_by_reason.update(bad["reason"].tolist())
    return report
