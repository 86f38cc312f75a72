"""AsyncNotifier: a client's one LISTEN connection, shared by all its workers.

The async notifier is the hand-written source; the sync notifier (a thread
instead of a task) is generated from it by ``tools/async_to_sync.py``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from psycopg import AsyncConnection

from . import instrument
from ._acompat import AEvent, acancel, ajoin, asleep, aspawn
from .queries import QUERIES

if TYPE_CHECKING:
    from .job_async import AsyncFetch

logger = logging.getLogger("raquel_pg.worker")

#: Longest wait between reconnection attempts of the notification connection.
MAX_RECONNECT_DELAY = 30.0

#: How long a new LISTEN connection waits for the probe it sent itself
#: through the main DSN before it concludes notifications do not reach it.
PROBE_TIMEOUT = 2.0

#: The warning logged (once per client) when the probe does not come back.
UNHEARD = (
    "notifications do not reach the LISTEN connection — a transaction pooler? set listen_dsn "
    "(RAQUEL_PG_LISTEN_DSN, --listen-dsn) to a direct connection to the server; "
    "workers poll meanwhile (every poll_interval)"
)


class AsyncConnect(Protocol):
    """Opens the LISTEN connection (the client's: to its ``listen_dsn``, else its ``dsn``)."""

    async def __call__(self) -> AsyncConnection[Any]: ...


class _Listening:
    """One run of the notifier: its task (or thread), its stop event, whether it hears."""

    def __init__(self) -> None:
        self.stop = AEvent()
        self.task: Any = None
        self.hears = False
        self.backend_pid: int | None = None


class AsyncNotifier:
    """Holds one LISTEN connection for every worker of a client and wakes them.

    Workers :meth:`subscribe` with the queues they want (None: all) and a
    callback; the first subscriber opens the connection (to the client's
    ``listen_dsn``, else its ``dsn``), the last one to :meth:`unsubscribe`
    closes it. Each notification on ``raquel_jobs`` (payload: a queue) calls
    the callback of every subscriber that wants its queue, on the notifier's
    task (thread, in the sync client): callbacks must be quick and not block.
    :meth:`subscribe_payloads` does the same for ``raquel_results`` (result
    waiters) and ``raquel_cancel`` (workers running a job whose cancellation
    is requested), whose payload is a job id, and ``raquel_handoff`` (jobs
    handed to an idle worker, '<worker> <job id> <claim id>'): the callback
    gets the payload.

    Each time the connection (re)starts LISTENing it proves that notifications
    reach it: it sends itself one through the client's pool (``pg_notify``
    on ``raquel_probe``, a random payload) and waits up to ``PROBE_TIMEOUT``
    seconds. If it arrives, :attr:`listening` is True and every subscriber is
    called once (to catch up with what was sent while not listening). If not
    (a LISTEN through a transaction pooler hears nothing), a warning is logged
    once per client, :attr:`listening` stays False, and the connection is
    closed and tried again later with backoff; workers poll meanwhile. A lost
    connection is reopened with exponential backoff (0.1 s doubling to
    ``MAX_RECONNECT_DELAY``), never raising.
    """

    def __init__(self, connect: AsyncConnect, fetch: AsyncFetch) -> None:
        self._connect = connect
        self._fetch = fetch
        self._lock = threading.Lock()
        self._subscribers: dict[object, tuple[frozenset[str] | None, Callable[[], None]]] = {}
        self._payload_subscribers: dict[object, tuple[str, Callable[[str | None], None]]] = {}
        self._current: _Listening | None = None
        self._warned = False

    @property
    def listening(self) -> bool:
        """True while the connection LISTENs and has proved that notifications reach it."""
        current = self._current
        return current is not None and current.hears

    @property
    def backend_pid(self) -> int | None:
        """The server backend pid of the LISTEN connection while :attr:`listening`, else None.

        A worker registers it to accept hand-offs (migration 0019_handoff): the
        enqueue hands a job only to a worker whose LISTEN backend is alive.
        """
        current = self._current
        return current.backend_pid if current is not None and current.hears else None

    def subscribe(self, key: object, queues: list[str] | None, heard: Callable[[], None]) -> None:
        """Calls ``heard()`` for each notification of one of ``queues`` (None: any) until unsubscribed.

        Starts the LISTEN connection if this is the first subscriber.
        """
        with self._lock:
            self._subscribers[key] = (None if queues is None else frozenset(queues), heard)
            self._start()

    def subscribe_payloads(self, key: object, channel: str, heard: Callable[[str | None], None]) -> None:
        """Calls ``heard(payload)`` for each notification on ``channel`` until unsubscribed.

        ``channel`` is ``"raquel_results"``, ``"raquel_cancel"`` or ``"raquel_handoff"``. ``heard(None)``
        is called each time the connection starts hearing (a notification may
        have been missed before): the subscriber checks again what it waits
        for. Starts the LISTEN connection if this is the first subscriber.
        """
        with self._lock:
            self._payload_subscribers[key] = (channel, heard)
            self._start()

    def _start(self) -> None:
        """Starts the LISTEN connection when it is not running (the caller holds the lock)."""
        if self._current is None:
            self._current = _Listening()
            self._current.task = aspawn(self._listen, self._current, name="raquel-notifier")

    async def unsubscribe(self, key: object) -> None:
        """Stops calling ``key``'s callback; the last subscriber to go closes the connection (waited for)."""
        with self._lock:
            self._subscribers.pop(key, None)
            self._payload_subscribers.pop(key, None)
            if self._subscribers or self._payload_subscribers or self._current is None:
                return
            current, self._current = self._current, None
        current.stop.set()
        acancel([current.task])
        await ajoin([current.task], None)

    def _dispatch(self, queue: str | None) -> None:
        """Calls the subscribers that want ``queue`` (None: every subscriber)."""
        with self._lock:
            callbacks = [
                heard
                for wanted, heard in self._subscribers.values()
                if queue is None or wanted is None or queue in wanted
            ]
        for heard in callbacks:
            heard()
        if queue is None:
            self._dispatch_payload(None, None)

    def _dispatch_payload(self, channel: str | None, payload: str | None) -> None:
        """Calls the payload subscribers of ``channel`` with ``payload`` (None: all of them, with None)."""
        with self._lock:
            callbacks = [
                heard for wanted, heard in self._payload_subscribers.values() if channel is None or wanted == channel
            ]
        for heard in callbacks:
            heard(payload)

    def _heard(self, channel: str, payload: str) -> None:
        """Dispatches one notification by its channel (the probe's own is ignored)."""
        if channel == "raquel_jobs":
            self._dispatch(payload)
        elif channel != "raquel_probe":
            self._dispatch_payload(channel, payload)

    async def _listen(self, current: _Listening) -> None:
        delay = 0.1
        while not current.stop.is_set():
            try:
                async with await self._connect() as conn:
                    await conn.execute(QUERIES["listen_probe"])
                    await conn.execute(QUERIES["listen_results"])
                    await conn.execute(QUERIES["listen_cancel"])
                    await conn.execute(QUERIES["listen_handoff"])
                    locked = await conn.execute(QUERIES["listen_alive"])
                    alive = await locked.fetchone()
                    await conn.execute(QUERIES["listen"])
                    if await self._probe(conn):
                        current.backend_pid = None if alive is None else int(alive[0])
                        current.hears = True
                        delay = 0.1
                        # Catch up with what came while not listening; a
                        # notification missed meanwhile may have consumed
                        # registrations, so every worker makes its own again.
                        self._dispatch(None)
                        while not current.stop.is_set():
                            async for notify in conn.notifies(timeout=0.5):
                                if instrument.observer is not None:
                                    instrument.observer.notified()
                                self._heard(notify.channel, notify.payload)
                                # Let the woken workers send their claims before
                                # this task (thread) reads the connection again.
                                await asleep(0)
            except psycopg.Error as error:  # any failure: reconnect, never let the notifier die
                if instrument.observer is not None:
                    instrument.observer.reconnecting()
                logger.warning("notification connection lost (%s); polling, reconnecting in %.1fs", error, delay)
            finally:
                current.hears = False
            await current.stop.wait_timeout(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)

    async def _probe(self, conn: AsyncConnection[Any]) -> bool:
        """Sends a notification through the pool and waits for it here; whether it came.

        Notifications for the workers that arrive meanwhile are dispatched.
        """
        token = uuid.uuid4().hex
        await self._fetch("probe", {"token": token})
        async for notify in conn.notifies(timeout=PROBE_TIMEOUT):
            if notify.channel == "raquel_probe" and notify.payload == token:
                return True
            self._heard(notify.channel, notify.payload)
        logger.debug("the probe did not come back within %.1fs", PROBE_TIMEOUT)
        if not self._warned:
            self._warned = True
            logger.warning(UNHEARD)
        return False
