"""A worker process whose handler records its effect and the job's success in one transaction.

    python tests/worker/tasks_support/exactly_once_worker.py DSN MODE

The handler inserts a row into tasks_effects and calls job.complete(conn=)
on the same connection, then commits. MODE "before-commit" stops (prints
"inside", sleeps) between the two, "after-commit" after the commit; "plain"
does neither. The test kills the process with SIGKILL at that point.
"""

from __future__ import annotations

import sys
import time

import psycopg

from raquel_pg import Job, Raquel

dsn, mode = sys.argv[1], sys.argv[2]


def handler(job: Job) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO tasks_effects (job_id) VALUES (%s)", (job.id,))
        job.complete({"done": True}, conn=conn)
        if mode == "before-commit":
            print("inside", flush=True)
            time.sleep(3600)
        conn.commit()
    if mode == "after-commit":
        print("committed", flush=True)
        time.sleep(3600)


with Raquel(dsn, lease=1000) as rq:
    worker = rq.subscribe("once", poll_interval=0.2)(handler)
    print("ready", flush=True)
    worker.run(handle_signals=True)
