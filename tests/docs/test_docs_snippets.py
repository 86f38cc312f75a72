"""Every Python block of the documentation (docs/ and README.md) runs against the test database.

The blocks of one page run in order in one namespace (as a reader types them), which starts
with ``rq`` (a :class:`Raquel` on the test database), ``dsn``, an ``orders`` table, and the
stand-ins the pages call (``do_work``, ``ready_for``); the placeholder DSN
``postgresql://postgres@localhost/app`` is the test database. A worker's or scheduler's
``run()`` stops on its own shortly after it starts, so blocks that end in one return. A block
marked ``<!-- snippet: not run, REASON -->`` on the line before is skipped (say why).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from raquel_pg import AsyncWorker, Raquel, Worker

DOCS = Path(__file__).resolve().parents[2] / "docs"
PLACEHOLDER_DSN = "postgresql://postgres@localhost/app"
#: A page's SQLAlchemy URL of the same database: its engine connects to the test database.
SQLALCHEMY_PLACEHOLDER = "postgresql+psycopg://postgres@localhost/app"
BLOCK = re.compile(r"(?:^(<!-- snippet: not run[^>]*-->)\n)?^```python\n(.*?)^```$", flags=re.MULTILINE | re.DOTALL)
RUN_FOR = 0.5  # seconds a worker's run() lasts in these tests


def python_blocks(page: Path) -> list[tuple[str, str | None]]:
    """The page's ```python blocks: (code, the not-run marker or None)."""
    return [(code, marker or None) for marker, code in BLOCK.findall(page.read_text(encoding="utf-8"))]


PAGES = [p for p in [DOCS.parent / "README.md", *sorted(DOCS.rglob("*.md"))] if python_blocks(p)]


class _Done:
    """What ``do_work`` returns: nothing to do, and awaitable for the async examples."""

    def __await__(self) -> Iterator[None]:
        return iter(())


def do_work(payload: Any) -> _Done:
    return _Done()


@pytest.fixture
def stopping_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers' run() returns RUN_FOR seconds after it starts (their stop() is called)."""
    sync_run, async_run = Worker.run, AsyncWorker.run

    def run(self: Worker, **kwargs: Any) -> None:
        threading.Timer(RUN_FOR, self.stop).start()
        sync_run(self, **kwargs)

    async def arun(self: AsyncWorker, **kwargs: Any) -> None:
        asyncio.get_running_loop().call_later(RUN_FOR, self.stop)
        await async_run(self, **kwargs)

    monkeypatch.setattr(Worker, "run", run)
    monkeypatch.setattr(AsyncWorker, "run", arun)


def test_the_docs_have_python_snippets() -> None:
    assert len(PAGES) >= 5, PAGES


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS.parent)) for p in PAGES])
def test_python_snippets_of_the_page_run(
    page: Path, dsn: str, conn: psycopg.Connection[Any], stopping_runs: None
) -> None:
    import sqlalchemy

    conn.execute("CREATE TABLE IF NOT EXISTS orders (id integer PRIMARY KEY, email text)")
    conn.execute("TRUNCATE orders, raquel.raquel_schedules")
    namespace: dict[str, Any] = {
        "__name__": "docs_snippet",
        "dsn": dsn,
        "do_work": do_work,
        "ready_for": lambda p: True,
    }
    original = None
    try:
        with Raquel(dsn, lease=2000) as rq:
            namespace["rq"] = original = rq
            for number, (code, marker) in enumerate(python_blocks(page), 1):
                if marker:
                    continue
                before = namespace.get("main")
                source = code.replace(
                    f'"{SQLALCHEMY_PLACEHOLDER}"', f'"postgresql+psycopg://", creator=lambda: psycopg.connect({dsn!r})'
                ).replace(PLACEHOLDER_DSN, dsn)
                exec(compile(source, f"{page.relative_to(DOCS.parent)} block {number}", "exec"), namespace)
                main = namespace.get("main")
                if main is not before and asyncio.iscoroutinefunction(main) and "asyncio.run(main())" not in code:
                    asyncio.run(main())
    finally:
        for value in namespace.values():
            if isinstance(value, Raquel) and value is not original:
                value.close()
            if isinstance(value, sqlalchemy.Engine):
                value.dispose()
        conn.execute("DROP TABLE IF EXISTS orders")
