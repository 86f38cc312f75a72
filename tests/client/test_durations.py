"""Command-line durations and times (raquel_pg.durations)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from raquel_pg import InvalidArgument
from raquel_pg.durations import format_ms, parse_duration, parse_iso, parse_time


@pytest.mark.parametrize(
    "text, expected",
    [
        ("7d", timedelta(days=7)),
        ("90s", timedelta(seconds=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1.5)),
        ("2w", timedelta(weeks=2)),
        ("0s", timedelta()),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "7x", "d7", "-1d", "1h x", "1h30"])
def test_parse_duration_refuses_what_is_not_a_duration_naming_the_argument(text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_duration(text, "--older-than")
    assert caught.value.argument == "--older-than"


def test_parse_time_reads_iso_8601_naive_as_utc() -> None:
    assert parse_time("2026-11-23T12:00:00", "--at") == datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def test_parse_time_reads_a_duration_as_that_long_ago() -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    assert parse_time("1h", "--since", now=now) == datetime(2026, 11, 23, 11, tzinfo=timezone.utc)


def test_parse_time_refuses_garbage() -> None:
    with pytest.raises(InvalidArgument, match="--since"):
        parse_time("yesterday", "--since")


@pytest.mark.parametrize(
    "ms, text",
    [
        (None, "-"),
        (850, "850ms"),
        (42_000, "42s"),
        (200_000, "3m20s"),
        (7_500_000, "2h05m"),
        (273_600_000, "3d04h"),
    ],
)
def test_format_ms(ms: int | None, text: str) -> None:
    assert format_ms(ms) == text


def test_parse_iso_refuses_a_duration() -> None:
    with pytest.raises(InvalidArgument, match="--at: '1h' is not an ISO 8601 time"):
        parse_iso("1h", "--at")
