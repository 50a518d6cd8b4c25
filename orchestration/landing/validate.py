"""Parse a landing file and split its records into typed good rows and quarantined rows with a reason.

Pure functions over bytes and DataFrames, so they are unit-tested without a warehouse. Checks run in a
fixed order and a row gets the reason of the first check it fails: readability, field count, encoding,
required fields, types and ranges, dates outside the data's window, unknown product, duplicate key.
Every record of a file ends up in exactly one of the two frames (`read.read_records` guarantees the
lines; an unreadable file is one quarantined record on line 0).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pandas as pd

from orchestration.landing.contract import (
    INTERACTION_TYPES,
    INTERACTIONS,
    LEAD_STATUS,
    LEAD_STATUSES,
    PRODUCTS,
    SALES,
    Reason,
    Source,
)
from orchestration.landing.read import (
    UNSTORABLE,
    UnreadableFile,
    decode,
    header_fields,
    printable,
    read_records,
    split_lines,
)

QUARANTINE_FIELDS = ["source_line", "reason", "detail", "raw_record", "fields_json"]
_INTEGER = r"[+-]?\d+"
_EXACT_INTEGER = r"[+-]?0*\d{1,15}"  # float64 holds these exactly and they fit BIGINT
MONEY_LIMIT = 1e12  # a price or line beyond a trillion is not real; it keeps daily sums inside decimal(18, 4)
_KEY_SEPARATOR = "\x1f"
_NULL_TEXT = "\x1e"  # stands for a missing value in a fingerprint
_UNREADABLE_PREVIEW_BYTES = 200


@dataclass
class ParsedFile:
    """A landing file read as text: rows with the contract's columns as strings, plus what failed parsing."""

    name: str
    sha256: str
    rows: pd.DataFrame  # contract columns as str, plus source_line and raw_record
    rejected: pd.DataFrame  # QUARANTINE_FIELDS
    unreadable: bool = False


@dataclass
class ValidatedRows:
    good: pd.DataFrame  # typed contract columns plus _source_line
    quarantined: pd.DataFrame  # QUARANTINE_FIELDS
    corrections: int = 0  # good rows that supersede an earlier delivery of their key


@dataclass(frozen=True)
class DateWindow:
    """The dates a delivery may carry, relative to the data's own dates (never the wall clock).

    The reference span is the dates already loaded plus the bulk of this delivery (its quartiles widened
    by 1.5 interquartile ranges, Tukey's fences), so stray dates, as long as they are a minority of the
    delivery, cannot stretch it. A delivery of fewer than MIN_BULK_ROWS dates has no bulk to speak of
    (a one-row file dated 2100 would be its own bulk): once data is loaded, such a delivery is held to
    the loaded span alone. Accepted: the span extended `years_before` back and `days_after` forward.
    """

    MIN_BULK_ROWS = 10

    years_before: int
    days_after: int
    loaded_first: pd.Timestamp | None = None
    loaded_last: pd.Timestamp | None = None

    def outside(self, stamps: pd.Series) -> pd.Series:
        days = _days(stamps)
        known = days.dropna()
        reference = [_days(pd.Series([x])).iloc[0] for x in (self.loaded_first, self.loaded_last) if x is not None]
        if len(known) >= self.MIN_BULK_ROWS or (len(known) and not reference):
            q1, q3 = known.quantile(0.25), known.quantile(0.75)
            reference += [q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)]
        if not reference:
            return pd.Series(False, index=stamps.index)
        low = min(reference) - 365.25 * self.years_before
        high = max(reference) + self.days_after
        return (days < low) | (days > high)


def _days(stamps: pd.Series) -> pd.Series:
    """Days since 1970 as floats: no overflow whatever the window's arithmetic does."""
    return (pd.to_datetime(stamps) - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _quarantine_frame(records: list[tuple[int, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=QUARANTINE_FIELDS[:4]).astype(
        {"source_line": "int64", "reason": "str", "detail": "str", "raw_record": "str"}
    )
    frame["fields_json"] = pd.Series([None] * len(frame), dtype="object")
    return frame


def parse_landing_file(name: str, data: bytes, source: Source) -> ParsedFile:
    """Read a landing file against the contract: columns are matched by header name, extra columns ignored."""
    sha = file_sha256(data)
    try:
        text = decode(data)
    except UnreadableFile as error:
        preview = printable(data[:_UNREADABLE_PREVIEW_BYTES].decode("latin-1"))
        rejected = _quarantine_frame([(0, Reason.UNREADABLE_FILE, str(error), preview)])
        return ParsedFile(name, sha, _empty_rows(source), rejected, unreadable=True)
    lines = split_lines(text.lstrip("\ufeff")) if text else []
    header = header_fields(lines)
    missing = [column for column in source.columns if column not in header]
    rejected: list[tuple[int, str, str, str]] = []
    if missing:
        detail = f"header lacks {', '.join(missing)}; expected {', '.join(source.columns)}"
        rejected = [
            (n, Reason.MISSING_COLUMNS, detail, printable(line)) for n, line in enumerate(lines[1:], 2) if line.strip()
        ]
        return ParsedFile(name, sha, _empty_rows(source), _quarantine_frame(rejected))

    positions = [header.index(column) for column in source.columns]
    may_hold_unstorable = UNSTORABLE.search(text) is not None
    good_rows: list[list[str]] = []
    line_numbers: list[int] = []
    raw_records: list[str] = []
    for first, last, fields, problem in read_records(lines, len(header)):
        raw = lines[first - 1] if last == first else "\n".join(lines[first - 1 : last])
        if fields is None:
            rejected.append((first, Reason.MALFORMED_ROW, problem, printable(raw)))
        elif not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        elif len(fields) != len(header):
            detail = f"{len(fields)} fields, header has {len(header)}"
            rejected.append((first, Reason.MALFORMED_ROW, detail, printable(raw)))
        elif may_hold_unstorable and UNSTORABLE.search(raw):
            detail = "NUL character (PostgreSQL cannot store it)" if "\x00" in raw else "bytes that are not UTF-8"
            rejected.append((first, Reason.INVALID_ENCODING, detail, printable(raw)))
        else:
            good_rows.append([fields[i].strip() for i in positions])
            line_numbers.append(first)
            raw_records.append(raw)
    rows = pd.DataFrame(good_rows, columns=list(source.columns), dtype="str")
    rows["source_line"] = pd.Series(line_numbers, dtype="int64")
    rows["raw_record"] = raw_records
    return ParsedFile(name, sha, rows, _quarantine_frame(rejected))


def _empty_rows(source: Source) -> pd.DataFrame:
    rows = pd.DataFrame({column: pd.Series(dtype="str") for column in source.columns})
    rows["source_line"] = pd.Series(dtype="int64")
    rows["raw_record"] = pd.Series(dtype="str")
    return rows


def row_keys(frame: pd.DataFrame, source: Source) -> pd.Series:
    """One string per row identifying it by the source's key columns (used for duplicate detection)."""
    first, *rest = source.key
    keys = frame[first].astype("str")
    for column in rest:
        keys = keys + _KEY_SEPARATOR + frame[column].astype("str")
    return keys


class _Triage:
    """Assigns each row the first reason it fails; later checks only see rows still unassigned."""

    def __init__(self, rows: pd.DataFrame):
        self.rows = rows
        self.reason = pd.Series(None, index=rows.index, dtype="object")
        self.detail = pd.Series(None, index=rows.index, dtype="object")

    def flag(self, failed: pd.Series, reason: Reason, describe) -> None:
        new = failed & self.reason.isna()
        if new.any():
            self.reason[new] = reason.value
            self.detail[new] = describe(self.rows[new])

    @property
    def ok(self) -> pd.Series:
        return self.reason.isna()


def _exact_integer(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(the integers, or NaN; a mask of integers too long to hold exactly)."""
    exact = values.str.fullmatch(_EXACT_INTEGER)
    too_long = values.str.fullmatch(_INTEGER) & ~exact
    return pd.to_numeric(values.where(exact), errors="coerce"), too_long


def _money(triage: _Triage, rows: pd.DataFrame, column: str) -> pd.Series:
    """A non-negative finite amount below MONEY_LIMIT; inf, 1e400 and the like are out of range."""
    amount = pd.to_numeric(rows[column], errors="coerce")
    triage.flag(~(amount >= 0), Reason.INVALID_PRICE, lambda r: f"{column}=" + r[column] + " is not >= 0")
    triage.flag(
        amount >= MONEY_LIMIT, Reason.OUT_OF_RANGE_NUMBER, lambda r: f"{column}=" + r[column] + f" >= {MONEY_LIMIT:g}"
    )
    return amount


def _normalized(frame: pd.DataFrame, source: Source) -> pd.DataFrame:
    """Typed values as comparable strings, the same whether they come from a file or from either warehouse."""
    out = pd.DataFrame(index=frame.index)
    for column in source.values:
        values = frame[column]
        if column in ("order_date", "event_at"):
            text = pd.to_datetime(values).dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        elif column in ("quantity", "unit_price", "price", "stock_on_hand", "rating"):
            text = pd.to_numeric(values).astype("float64").astype("str")
        else:
            text = values.astype("object").astype("str").where(values.notna())
        out[column] = text.fillna(_NULL_TEXT)
    return out


def value_fingerprints(frame: pd.DataFrame, source: Source) -> pd.Series:
    """One string per row of its non-key values; two deliveries of a key are a correction when these differ."""
    normalized = _normalized(frame, source)
    first, *rest = source.values
    fingerprints = normalized[first]
    for column in rest:
        fingerprints = fingerprints + _KEY_SEPARATOR + normalized[column]
    return fingerprints


def validate_rows(
    parsed: ParsedFile,
    source: Source,
    known_product_ids: pd.Index,
    loaded: pd.Series,
    date_window: DateWindow | None = None,
) -> ValidatedRows:
    """Type and check the parsed rows of one file.

    known_product_ids: product ids the warehouse knows (needed for sales and interactions).
    loaded: `value_fingerprints` of the latest loaded version, indexed by `row_keys`, of every key of this
    file that was loaded before. A key delivered again with the same values is a duplicate; with other
    values it is a correction and loads as the key's new version (products: every delivery is a version).
    A key repeated inside one file is a duplicate: its first valid line wins.
    date_window: dates outside it are quarantined as out_of_range_date (None: no window).
    """
    rows = parsed.rows
    triage = _Triage(rows)
    for column in source.required:
        triage.flag(rows[column] == "", Reason.MISSING_REQUIRED_FIELD, lambda r, c=column: f"{c} is empty")

    typed = rows[list(source.columns)].copy()
    stamp_column = None
    if source is PRODUCTS:
        typed["price"] = _money(triage, rows, "price")
        stock, stock_too_long = _exact_integer(rows["stock_on_hand"])
        triage.flag(stock_too_long, Reason.OUT_OF_RANGE_NUMBER, lambda r: "stock_on_hand=" + r["stock_on_hand"])
        bad_stock = (rows["stock_on_hand"] != "") & ~(stock >= 0)
        triage.flag(bad_stock, Reason.INVALID_STOCK, lambda r: "stock_on_hand=" + r["stock_on_hand"])
        typed["stock_on_hand"] = stock.where(triage.ok).astype("Int64")
        typed["brand"] = rows["brand"].replace("", None)
    elif source is SALES:
        typed["order_date"] = pd.to_datetime(rows["order_date"], format="%Y-%m-%d", errors="coerce")
        triage.flag(typed["order_date"].isna(), Reason.INVALID_DATE, lambda r: "order_date=" + r["order_date"])
        quantity, quantity_too_long = _exact_integer(rows["quantity"])
        triage.flag(quantity_too_long, Reason.OUT_OF_RANGE_NUMBER, lambda r: "quantity=" + r["quantity"])
        triage.flag(quantity.isna(), Reason.INVALID_QUANTITY, lambda r: "quantity=" + r["quantity"])
        triage.flag(quantity <= 0, Reason.NON_POSITIVE_QUANTITY, lambda r: "quantity=" + r["quantity"])
        typed["unit_price"] = _money(triage, rows, "unit_price")
        revenue = quantity * typed["unit_price"]
        triage.flag(
            revenue >= MONEY_LIMIT,
            Reason.OUT_OF_RANGE_NUMBER,
            lambda r: "quantity x unit_price = " + r["quantity"] + " x " + r["unit_price"] + f" >= {MONEY_LIMIT:g}",
        )
        typed["quantity"] = quantity.where(triage.ok).astype("Int64")
        typed["customer_id"] = rows["customer_id"].replace("", None)
        stamp_column = ("order_date", "order_date")
    elif source is INTERACTIONS:
        stamps = pd.to_datetime(rows["timestamp"], format="ISO8601", utc=True, errors="coerce")
        typed["event_at"] = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        triage.flag(stamps.isna(), Reason.INVALID_TIMESTAMP, lambda r: "timestamp=" + r["timestamp"])
        valid_type = rows["interaction_type"].isin(INTERACTION_TYPES)
        expected = "|".join(INTERACTION_TYPES)
        triage.flag(
            ~valid_type,
            Reason.INVALID_INTERACTION_TYPE,
            lambda r: "interaction_type=" + r["interaction_type"] + f" not in {expected}",
        )
        typed["rating"] = pd.to_numeric(rows["rating"], errors="coerce")
        bad_rating = (rows["rating"] != "") & ~typed["rating"].between(1, 5)
        triage.flag(bad_rating, Reason.INVALID_RATING, lambda r: "rating=" + r["rating"] + " not in [1, 5]")
        typed["session_id"] = rows["session_id"].replace("", None)
        typed = typed.drop(columns="timestamp")
        stamp_column = ("event_at", "timestamp")
    elif source is LEAD_STATUS:
        no_reference = (rows["lead_key"] == "") & (rows["phone"] == "") & (rows["website"] == "")
        triage.flag(no_reference, Reason.UNRESOLVED_LEAD, lambda r: "lead_key, phone and website are all empty")
        stamps = pd.to_datetime(rows["changed_at"], format="ISO8601", utc=True, errors="coerce")
        typed["changed_at"] = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        triage.flag(stamps.isna(), Reason.INVALID_TIMESTAMP, lambda r: "changed_at=" + r["changed_at"])
        status = rows["status"].str.lower()
        expected = "|".join(LEAD_STATUSES)
        triage.flag(
            ~status.isin(LEAD_STATUSES),
            Reason.INVALID_STATUS,
            lambda r: "status=" + r["status"] + f" not in {expected}",
        )
        typed["status"] = status
        for column in ("lead_key", "phone", "website", "owner", "note"):
            typed[column] = rows[column].replace("", None)
        stamp_column = ("changed_at", "changed_at")

    if date_window is not None and stamp_column is not None:
        typed_column, raw_column = stamp_column
        outside = date_window.outside(typed[typed_column].where(triage.ok))
        triage.flag(
            outside,
            Reason.OUT_OF_RANGE_DATE,
            lambda r: (
                f"{raw_column}=" + r[raw_column] + f" is more than {date_window.years_before} years before "
                f"or {date_window.days_after} days after the data's dates"
            ),
        )

    if source in (SALES, INTERACTIONS):  # rows that name a product
        unknown = ~rows["product_id"].isin(known_product_ids)
        triage.flag(unknown, Reason.UNKNOWN_PRODUCT_ID, lambda r: "product_id=" + r["product_id"] + " not in products")

    keys = row_keys(rows, source)
    key_names = ", ".join(source.key)
    repeated_in_file = keys.where(triage.ok).duplicated() & triage.ok
    triage.flag(repeated_in_file, Reason.DUPLICATE_ID, lambda r: f"({key_names}) repeated in this file")
    corrections = 0
    if source is not PRODUCTS and len(loaded):
        seen = keys.isin(loaded.index) & triage.ok
        same = pd.Series(False, index=rows.index)
        if seen.any():
            previous = loaded.reindex(keys[seen]).to_numpy()
            same[seen] = value_fingerprints(typed[seen], source).to_numpy() == previous
        triage.flag(same, Reason.DUPLICATE_ID, lambda r: f"({key_names}) already loaded with the same values")
        corrections = int((seen & triage.ok).sum())

    good = typed[triage.ok].copy()
    good["_source_line"] = rows.loc[triage.ok, "source_line"].astype("int64")
    if "source_file" in rows:  # re-validated quarantine rows keep the file they came from
        good["_source_file"] = rows.loc[triage.ok, "source_file"]
    bad = rows[~triage.ok]
    flagged = pd.DataFrame(
        {
            "source_line": bad["source_line"].astype("int64"),
            "reason": triage.reason[~triage.ok].astype("str"),
            "detail": triage.detail[~triage.ok].astype("str"),
            "raw_record": bad["raw_record"].map(printable).astype("str"),
            "fields_json": [json.dumps(fields) for fields in bad[list(source.columns)].to_dict("records")],
        }
    )
    quarantined = pd.concat([parsed.rejected, flagged], ignore_index=True) if len(flagged) else parsed.rejected
    return ValidatedRows(
        good=good.reset_index(drop=True), quarantined=quarantined.sort_values("source_line"), corrections=corrections
    )


def reason_counts(quarantined: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in quarantined["reason"].value_counts().sort_index().items()}


__all__ = [
    "DateWindow",
    "ParsedFile",
    "ValidatedRows",
    "parse_landing_file",
    "reason_counts",
    "row_keys",
    "validate_rows",
    "value_fingerprints",
]
