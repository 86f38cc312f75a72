"""The migrations page lists every migration file, once each, in the order they are applied.

docs/operations/migrations.md keeps a table of the files of migrations/ with what each defines;
a migration added without its row, or a file renamed, fails here rather than leaving the page
behind the runner.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_migrations_page_lists_every_migration_in_order() -> None:
    page = (ROOT / "docs" / "operations" / "migrations.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(\d{4}_\w+\.sql)` \|", page, flags=re.MULTILINE)
    assert listed == sorted(path.name for path in (ROOT / "migrations").glob("*.sql"))
