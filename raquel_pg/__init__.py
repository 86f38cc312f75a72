"""raquel_pg: a PostgreSQL-native job queue with raquel's API.

The queue's rules live in PL/pgSQL functions installed by versioned
migrations; :class:`Raquel` (sync) and :class:`AsyncRaquel` (asyncio) are thin
clients over them, and workers wake on LISTEN/NOTIFY.
"""

from importlib.metadata import PackageNotFoundError, version

from .client import Job, Raquel
from .client_async import AsyncJob, AsyncRaquel
from .errors import (
    ClaimLost,
    InvalidArgument,
    JobCancelled,
    JobFailed,
    MigrationError,
    NotMigrated,
    RaquelError,
    StopSubscription,
)
from .importer import import_raquel
from .importer_async import import_raquel as import_raquel_async
from .jsonvalues import UnreadableJSON
from .model import JobRecord, QueueControls, QueueStats
from .periodic import Schedule
from .raquel_tables import ImportRefused, ImportReport, legacy_id
from .results import EnqueuedJob
from .results_async import AsyncEnqueuedJob
from .scheduler import Scheduler
from .scheduler_async import AsyncScheduler
from .subscriptions import Subscription
from .subscriptions_async import AsyncSubscription
from .tasks import Task
from .tasks_async import AsyncTask
from .worker import Worker
from .worker_async import AsyncWorker

try:
    #: The installed distribution's version (``raquel-pg --version``).
    __version__ = version("raquel-pg")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "AsyncEnqueuedJob",
    "AsyncJob",
    "AsyncRaquel",
    "AsyncScheduler",
    "AsyncSubscription",
    "AsyncTask",
    "AsyncWorker",
    "ClaimLost",
    "EnqueuedJob",
    "ImportRefused",
    "ImportReport",
    "InvalidArgument",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobRecord",
    "MigrationError",
    "NotMigrated",
    "QueueControls",
    "QueueStats",
    "Raquel",
    "RaquelError",
    "Schedule",
    "Scheduler",
    "StopSubscription",
    "Subscription",
    "Task",
    "UnreadableJSON",
    "Worker",
    "import_raquel",
    "import_raquel_async",
    "legacy_id",
]
