"""The lead_status landing source (a CRM export): every bad row gets its reason, good rows come out typed."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestration.landing.contract import LEAD_STATUS, Reason
from orchestration.landing.validate import parse_landing_file, validate_rows

HEADER = b"lead_key,phone,website,status,changed_at,owner,note\n"
GOOD = b",(555) 123-4567,,contacted,2024-03-01T10:00:00Z,ann,first call\n"


def _validate(body: bytes):
    parsed = parse_landing_file("lead_status.csv", HEADER + body, LEAD_STATUS)
    return validate_rows(parsed, LEAD_STATUS, pd.Index([]), pd.Index([]))


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (b",,,contacted,2024-03-01T10:00:00Z,ann,", Reason.UNRESOLVED_LEAD),
        (b"K1,,,Closed Won,2024-03-01T10:00:00Z,ann,", Reason.INVALID_STATUS),
        (b"K1,,,won,next tuesday,ann,", Reason.INVALID_TIMESTAMP),
        (b"K1,,,won,2024-02-30T10:00:00Z,ann,", Reason.INVALID_TIMESTAMP),
        (b"K1,,,,2024-03-01T10:00:00Z,ann,", Reason.MISSING_REQUIRED_FIELD),
        (b"K1,,,won,,ann,", Reason.MISSING_REQUIRED_FIELD),
        (b"K1,,,won,2024-03-01T10:00:00Z", Reason.MALFORMED_ROW),
        (GOOD.rstrip(b"\n"), Reason.DUPLICATE_ID),  # the same change twice in one file: the first one wins
    ],
)
def test_bad_status_row_gets_its_reason(row, reason):
    result = _validate(GOOD + row + b"\n")
    assert len(result.good) == 1
    assert result.quarantined["reason"].tolist() == [reason.value]
    assert result.quarantined["source_line"].tolist() == [3]


def test_good_rows_are_typed_with_any_one_reference():
    body = GOOD + b"abc123,,,WON,2024-03-02T09:30:00+02:00,,\n,,https://x.example,lost,1999-12-31T23:59:59Z,bob,\n"
    good = _validate(body).good
    assert good["status"].tolist() == ["contacted", "won", "lost"]
    assert good["changed_at"].astype(str).tolist() == [
        "2024-03-01 10:00:00",
        "2024-03-02 07:30:00",
        "1999-12-31 23:59:59",
    ]
    assert good["lead_key"].isna().tolist() == [True, False, True] and good["lead_key"].iloc[1] == "abc123"
    assert good["website"].iloc[2] == "https://x.example"
    assert good["owner"].isna().tolist() == [False, True, False]


def test_changed_at_far_from_the_deliverys_own_dates_is_out_of_range():
    from orchestration.landing.validate import DateWindow

    body = b"".join(b",555000%d,,contacted,2024-03-0%dT10:00:00Z,ann,\n" % (i, i) for i in range(1, 8))
    body += b",5559999,,won,1900-01-01T00:00:00Z,ann,\n"
    parsed = parse_landing_file("lead_status.csv", HEADER + body, LEAD_STATUS)
    result = validate_rows(parsed, LEAD_STATUS, pd.Index([]), pd.Series(dtype="str"), DateWindow(5, 30))
    assert len(result.good) == 7
    assert result.quarantined["reason"].tolist() == [Reason.OUT_OF_RANGE_DATE.value]
