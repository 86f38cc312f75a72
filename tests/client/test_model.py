"""Reading rows back: the job record's fields, and payloads as JSON when the text is JSON, else the
text (raquel's rule)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from raquel_pg.model import JOB_COLUMNS, JobRecord
from raquel_pg.params import decode_payload


def test_the_record_fields_follow_the_columns_read_back() -> None:
    # JobRecord.from_row builds records positionally from rows of JOB_COLUMNS.
    names = [f.name for f in dataclasses.fields(JobRecord) if f.init and not f.kw_only]
    assert names == ["raw_payload" if column == "payload" else column for column in JOB_COLUMNS]


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
