"""Reading rows back: the job record's fields, and payloads as JSON when the text is JSON, else the
text (raquel's rule)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raquel_pg.model import CLAIM_WIDE, JOB_COLUMNS, JobRecord
from raquel_pg.params import decode_payload


def test_the_record_fields_follow_the_columns_read_back() -> None:
    # JobRecord.from_row builds records positionally from rows of JOB_COLUMNS.
    names = [f.name for f in dataclasses.fields(JobRecord) if f.init and not f.kw_only]
    assert names == ["raw_payload" if column == "payload" else column for column in JOB_COLUMNS]


def test_from_claim_row_is_from_row() -> None:
    # A worker's claimed row (JOB_COLUMNS, then trace_context) is built by position: every column a
    # value of its own, so that a field read from another column's position shows.
    row: list[Any] = [f"value of {column}" for column in JOB_COLUMNS] + ['{"traceparent": "t"}']
    for index, column in enumerate(JOB_COLUMNS):
        if column.endswith("_at"):
            row[index] = 1_700_000_000_000 + index
    claimed = JobRecord.from_claim_row(tuple(row))
    assert claimed == JobRecord.from_row(tuple(row))
    assert claimed.trace_context == '{"traceparent": "t"}' and claimed.out_of_range is None
    # A time outside datetime's range: clamped and listed, as from_row does.
    row[JOB_COLUMNS.index("finished_at")] = 400_000_000_000_000
    clamped = JobRecord.from_claim_row(tuple(row))
    assert clamped == JobRecord.from_row(tuple(row))
    assert clamped.out_of_range == {"finished_at": 400_000_000_000_000}
    assert clamped.trace_context == '{"traceparent": "t"}'


def test_from_claim_row_reads_the_claims_shared_values_from_the_row_carrying_them() -> None:
    # The claim query sends status, claimed_by, claimed_at, lease_expires_at and claim_id in one
    # row of a claim (CLAIM_WIDE), the others' NULL: built with that row, a row reads them from it.
    carrying: list[Any] = [f"claim's {column}" for column in JOB_COLUMNS] + [None]
    row: list[Any] = [f"row's {column}" for column in JOB_COLUMNS] + [None]
    for values in (carrying, row):
        for index, column in enumerate(JOB_COLUMNS):
            if column.endswith("_at"):
                values[index] = 1_700_000_000_000 + index + (0 if values is row else 1000)
    for index in CLAIM_WIDE:
        row[index] = None
    expected = list(row)
    for index in CLAIM_WIDE:
        expected[index] = carrying[index]
    assert JobRecord.from_claim_row(tuple(row), tuple(carrying)) == JobRecord.from_row(tuple(expected))
    # A time outside datetime's range, in the row or in the claim's values: clamped and listed.
    for values, column in ((row, "finished_at"), (carrying, "lease_expires_at")):
        values[JOB_COLUMNS.index(column)] = expected[JOB_COLUMNS.index(column)] = 400_000_000_000_000
        clamped = JobRecord.from_claim_row(tuple(row), tuple(carrying))
        assert clamped == JobRecord.from_row(tuple(expected))
        assert column in (clamped.out_of_range or {})


def as_raquel_reads_it(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.parametrize(
    "text",
    [
        "x",
        "hello world",
        "émoji 🎉",
        "<xml/>",
        "'single'",
        "tru",
        "nul",
        "[1",
        "{",
        "1 2",
        "--1",
        '{"a": 1}',
        "[1, 2]",
        '"quoted"',
        "-1",
        "0",
        "3.5e2",
        "true",
        "false",
        "null",
        "NaN",
        "Infinity",
        "-Infinity",
        '  {"padded": true}  ',
        "\n[1]",
        "\t42",
        " x",
    ],
)
def test_a_payload_reads_back_as_json_or_as_its_text(text: str) -> None:
    decoded = decode_payload(text)
    expected = as_raquel_reads_it(text)
    assert decoded == expected or (decoded != decoded and expected != expected)  # NaN


@pytest.mark.parametrize("text", [None, ""])
def test_a_null_or_empty_payload_reads_back_as_none(text: str | None) -> None:
    assert decode_payload(text) is None


#: JSON values, dumped as text, with or without whitespace or other text around them.
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
_around = st.sampled_from(["", " ", "\n", "\t ", "x", "]", "\x0c", "\ufeff"])


@given(before=_around, value=_json_values, after=_around)
def test_a_json_value_with_anything_around_it_reads_back_as_json_loads_reads_it(
    before: str, value: Any, after: str
) -> None:
    text = before + json.dumps(value) + after
    decoded, expected = decode_payload(text), as_raquel_reads_it(text)
    assert decoded == expected or json.dumps(decoded) == json.dumps(expected)  # NaN is not NaN


@given(st.text())
def test_any_text_reads_back_as_json_loads_reads_it(text: str) -> None:
    decoded, expected = decode_payload(text), (as_raquel_reads_it(text) if text else None)
    assert decoded == expected or json.dumps(decoded) == json.dumps(expected)
