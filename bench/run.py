"""``python -m bench.run [--quick]``: runs the benchmark and writes bench/RESULTS.md.

The server: ``RAQUEL_PG_BENCH_DSN`` or ``RAQUEL_PG_TEST_DSN`` if set, else an
embedded PostgreSQL in a temporary directory. See bench/README.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import default_mode, fast_mode, peer_wake, peers, pooler, results, scenarios, server_cost  # noqa: E402
from bench.measure import SIZES, Section, Sizes  # noqa: E402
from bench.report import render  # noqa: E402
from bench.server import Server, server  # noqa: E402

Scenario = Callable[[Server, Sizes], Section | list[Section]]

#: The scenarios, by the name ``--only`` takes, in run order.
SCENARIOS: dict[str, Scenario] = {
    "enqueue": scenarios.scenario_enqueue,
    "e2e": scenarios.scenario_e2e,
    "wake": scenarios.scenario_wake,
    "history": scenarios.scenario_history,
    "peers": peers.scenario_peers,
    "peerwake": peer_wake.scenario_peer_wake,
    "pooler": pooler.scenario_pooler,
    "results": results.scenario_results,
    "default": default_mode.scenario_default,
    "fast": fast_mode.scenario_fast,
    "servercost": server_cost.scenario_server_cost,
}

DEFAULT_OUTPUT = Path(__file__).with_name("RESULTS.md")


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke size (~1-2 min) instead of full size")
    parser.add_argument("--size", choices=sorted(SIZES), help="tiny, quick or full (overrides --quick)")
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), help="run only this scenario (repeatable)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the results")
    parser.add_argument("--strict", action="store_true", help="stop at the first failing scenario")
    return parser.parse_args(argv)


def run(sizes: Sizes, names: list[str], output: Path, *, strict: bool = False) -> list[Section]:
    """Runs the named scenarios, writes ``output`` and returns the sections."""
    started = time.monotonic()
    sections = []
    with server() as srv:
        environment = srv.environment()
        for name in names:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            begun = time.monotonic()
            try:
                made = SCENARIOS[name](srv, sizes)
                sections += made if isinstance(made, list) else [made]
            except Exception as error:
                if strict:
                    raise
                failed = Section(f"{name}: FAILED", f"`{error!r}`", ["traceback"])
                failed.add(traceback.format_exc().strip().splitlines()[-1])
                sections.append(failed)
            print(f"[bench] {name} done in {time.monotonic() - begun:.0f}s", file=sys.stderr, flush=True)
    output.write_text(render(sizes, environment, sections, time.monotonic() - started))
    return sections


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse(argv)
    logging.basicConfig(level=logging.ERROR)
    sizes = SIZES[args.size or ("quick" if args.quick else "full")]
    run(sizes, args.only or list(SCENARIOS), args.output, strict=args.strict)
    print(args.output.read_text())


if __name__ == "__main__":
    main()
