"""Hostile files at the validator: each gives its loaded rows and quarantine reasons, and nothing is lost."""

from __future__ import annotations

import string
from collections import Counter

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.landing.contract import INTERACTIONS, PRODUCTS, SALES, Reason
from orchestration.landing.validate import DateWindow, parse_landing_file, validate_rows
from tests.landing_corpus import SALES_HEADER, first_delivery

SOURCES = {s.name: s for s in (PRODUCTS, SALES, INTERACTIONS)}
KNOWN = pd.Index(["P00001", "P00002"])
NOTHING = pd.Series(dtype="str")
WINDOW = DateWindow(years_before=25, days_after=366)


def _validate(data: bytes, source=SALES, window=WINDOW):
    parsed = parse_landing_file("f.csv", data, source)
    return validate_rows(parsed, source, KNOWN, NOTHING, window)


@pytest.mark.parametrize("case", first_delivery(), ids=lambda c: c.file)
def test_every_hostile_file_gives_its_rows_and_reasons(case):
    result = _validate(case.data, SOURCES[case.source])
    assert len(result.good) == case.loaded, case.what
    assert Counter(result.quarantined["reason"]) == case.reasons, case.what


def _case(name):
    return next(c for c in first_delivery() if c.file == name)


def test_unterminated_quote_costs_only_its_own_line():
    result = _validate(_case("h10_unterminated_quote.csv").data)
    assert result.quarantined[["source_line", "reason"]].values.tolist() == [[2, "malformed_row"]]
    assert result.good["_source_line"].tolist() == [3, 4]


def test_multi_line_records_keep_their_whole_text_and_first_line():
    result = _validate(_case("h11_multiline.csv").data)
    bad = result.quarantined.iloc[0]
    assert (bad["source_line"], bad["raw_record"]) == (2, 'H11-0,2023-03-01,P00001,x,2.5,"two\nlines"')
    assert result.good["_source_line"].tolist() == [4, 6]
    assert result.good["customer_id"].iloc[0] == "C\n1"


def test_separator_characters_inside_a_field_do_not_shift_later_raw_records():
    result = _validate(_case("h12_separators.csv").data)
    assert result.good["customer_id"].tolist() == ["C\u2028x\x0cy\x1cz"]
    bad = result.quarantined.iloc[0]
    assert (bad["source_line"], bad["raw_record"]) == (3, "H12-1,2023-03-01,P00001,1,abc,C")


def test_null_spellings_stay_text_and_empty_is_null():
    result = _validate(_case("h15_null_spellings.csv").data)
    customers = result.good["customer_id"]
    assert customers[:2].tolist() == ["\\N", "NULL"] and pd.isna(customers[2])


def test_nul_and_bad_bytes_are_stored_printable():
    raw = _validate(_case("h09_nul.csv").data).quarantined["raw_record"].iloc[0]
    assert "\x00" not in raw and "\\x00" in raw


def test_date_window_follows_the_loaded_data_not_the_file_alone():
    body = f"{SALES_HEADER}\nA,2000-06-01,P00001,1,1,\nB,2023-03-01,P00001,1,1,\n".encode()
    loaded = DateWindow(25, 366, pd.Timestamp("2023-01-01"), pd.Timestamp("2023-04-30"))
    result = _validate(body, window=loaded)
    assert result.good["order_id"].tolist() == ["A", "B"]  # 2000 is within 25 years of the data
    later = "".join(f"C{i},2023-05-0{i},P00001,1,1,\n" for i in range(1, 5))
    stray = f"{SALES_HEADER}\n{later}D,2024-06-01,P00001,1,1,\n".encode()
    assert _validate(stray, window=loaded).quarantined["reason"].tolist() == [Reason.OUT_OF_RANGE_DATE.value]
    after_gap = "".join(f"E{i},2024-06-{i + 1:02d},P00001,1,1,\n" for i in range(DateWindow.MIN_BULK_ROWS))
    assert _validate(f"{SALES_HEADER}\n{after_gap}".encode(), window=loaded).quarantined.empty, "a delivery after a gap"


@pytest.mark.parametrize("day", ["1900-01-01", "2100-01-01", "2024-06-01"])
def test_a_lone_stray_date_is_not_its_own_bulk(day):
    """A one-row delivery cannot vouch for itself once data is loaded: 2100 would otherwise pass."""
    loaded = DateWindow(25, 366, pd.Timestamp("2023-01-01"), pd.Timestamp("2023-04-30"))
    lone = f"{SALES_HEADER}\nF,{day},P00001,1,1,\nG,2023-04-30,P00001,1,1,\n".encode()
    result = _validate(lone, window=loaded)
    assert result.quarantined["reason"].tolist() == [Reason.OUT_OF_RANGE_DATE.value]
    assert result.good["order_id"].tolist() == ["G"]
    first_ever = f"{SALES_HEADER}\nF,{day},P00001,1,1,\n".encode()  # nothing loaded: the data's only date
    assert _validate(first_ever, window=DateWindow(25, 366)).quarantined.empty


# --- property: arbitrary bytes never raise and never lose a line -------------------------------------------------

_CSV_ALPHABET = string.ascii_letters + string.digits + ',"\r\n\x00\x0c\u2028é -.;'
_ROWS = st.lists(st.lists(st.text(_CSV_ALPHABET, max_size=12), min_size=0, max_size=8).map(",".join), max_size=12)


def _covered_lines(result) -> list[int]:
    """Line numbers the output records span: a record's raw text holds one line per physical line."""
    spans = pd.concat(
        [
            result.quarantined[["source_line", "raw_record"]],
            pd.DataFrame({"source_line": result.good["_source_line"], "raw_record": result.good_raw}),
        ]
    )
    return sorted(n + k for n, raw in spans.itertuples(index=False) for k in range(raw.count("\n") + 1))


def _expected_lines(data: bytes) -> list[int]:
    from orchestration.landing.read import decode, split_lines

    lines = split_lines(decode(data).lstrip("\ufeff"))
    return [n for n, line in enumerate(lines[1:], 2) if line.strip()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=_ROWS, encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]), newline=st.sampled_from(["\n", "\r", "\r\n"])
)
def test_reader_and_validator_never_raise_and_never_lose_a_line(body, encoding, newline):
    text = newline.join([SALES_HEADER, *body])
    data = text.encode(encoding, "replace")
    parsed = parse_landing_file("f.csv", data, SALES)
    result = validate_rows(parsed, SALES, KNOWN, NOTHING, WINDOW)
    if parsed.unreadable:
        assert result.quarantined["reason"].tolist() == [Reason.UNREADABLE_FILE.value]
        return
    result.good_raw = parsed.rows.set_index("source_line").loc[result.good["_source_line"], "raw_record"].to_numpy()
    covered = _covered_lines(result)
    assert len(covered) == len(set(covered)), "a line counted twice"
    assert set(_expected_lines(data)) <= set(covered), "a non-blank line went missing"


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data):
    for source in (SALES, INTERACTIONS, PRODUCTS):
        parsed = parse_landing_file("f.bin", data, source)
        result = validate_rows(parsed, source, KNOWN, NOTHING, WINDOW)
        assert len(result.good) + len(result.quarantined) >= (1 if parsed.unreadable else 0)
        assert not result.quarantined["raw_record"].str.contains("\x00").any()
