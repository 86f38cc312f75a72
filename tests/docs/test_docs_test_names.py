"""Every test the documentation names exists, so a renamed or deleted test cannot leave a claim
in the docs that nothing holds any more.

A name in the pages of docs/ or in README.md is ``test_x`` (a test function: some file of
tests/ defines ``def test_x``), ``test_x…`` or ``test_x*`` (a prefix of one), or
``test_x.py`` / ``test_x*.py`` (a file of tests/ or of a folder below it).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\btest_[A-Za-z0-9_]+(?:\*?\.py|…|\*)?")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def defined_tests() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        found.update(re.findall(r"^\s*(?:async )?def (test_\w+)", path.read_text(encoding="utf-8"), flags=re.MULTILINE))
    return found


def missing(text: str, tests: set[str]) -> list[str]:
    """The names in ``text`` that no test of tests/ answers to."""
    gone = []
    for name in NAME.findall(text):
        if name.endswith(".py"):
            if not list((ROOT / "tests").rglob(name)):
                gone.append(name)
        elif name.endswith(("…", "*")):
            if not any(t.startswith(name[:-1]) for t in tests):
                gone.append(name)
        elif name not in tests:
            gone.append(name)
    return gone


def test_every_test_the_docs_name_exists() -> None:
    tests = defined_tests()
    gone = {
        str(path.relative_to(ROOT)): names
        for path in documents()
        if (names := missing(path.read_text(encoding="utf-8"), tests))
    }
    assert gone == {}, "the docs name tests that tests/ does not define"


def test_a_name_that_no_test_has_is_reported() -> None:
    tests = {"test_real_one", "test_grant_roles"}
    text = (
        "`test_real_one`, `test_grant_*`, `test_gone`, `test_gr…`, "
        "`tests/docs/test_docs_test_names.py`, `tests/test_nothing.py`"
    )
    assert missing(text, tests) == ["test_gone", "test_nothing.py"]
