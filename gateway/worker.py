"""The worker: syncs profiles and applies outbox writes, on taskiq.

The database holds the truth; tasks only carry wake-ups. A sweep every ``tick`` seconds
re-derives due work from the tables (profiles due for sync, writes not yet applied), so a
lost task costs a few seconds, never data. Leases in the tables make concurrent workers
safe: a profile is synced, and a write applied, by one worker at a time.

Embedded default (``CALGATE_WORKER_MODE=inprocess``): taskiq's in-memory broker inside
``calgate serve``. ``calgate worker`` runs the same loop in its own process(es).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
from taskiq import InMemoryBroker

from .persistence.wakeups import Wakeups
from .services.pull import PullService
from .services.push import PushService
from .sync.answers import Answered, Answers
from .sync.delivery import Delivered, Deliverer
from .sync.engine import Outcome, SyncEngine
from .sync.external import ExternalApplied, ExternalOutbox
from .sync.invite_delivery import InviteDeliverer
from .sync.outbox import Applied, Outbox

log = logging.getLogger("calgate.worker")
T = TypeVar("T")


class Worker:
    """Finds due work and runs it as taskiq tasks."""

    def __init__(self, sync: SyncEngine, outbox: Outbox, answers: Answers,
                 tick: float = 2.0, push: PushService | None = None,
                 deliverer: Deliverer | None = None, wakeups: Wakeups | None = None,
                 concurrency: int = 16, external: ExternalOutbox | None = None,
                 invites: InviteDeliverer | None = None,
                 pull: PullService | None = None) -> None:
        self.sync = sync
        self.pull = pull  # push channels read from the upstream
        self.external = external
        self.invites = invites  # Smart Invite notifications
        self.outbox = outbox
        self.answers = answers
        self.push = push
        self.deliverer = deliverer
        self.wakeups = wakeups
        self.tick = tick
        # taskiq's in-memory broker starts every task at once (its max_async_tasks bounds
        # only a listen loop it does not use): the semaphore is what bounds the work.
        self.broker = InMemoryBroker(propagate_exceptions=False)
        self.concurrency = concurrency
        self._slots: anyio.Semaphore | None = None
        self._wake: anyio.Event | None = None

        self.stopping = False
        self.held: set[tuple[str, int | str]] = set()  # what this process's tasks hold
        self.queued: set[tuple[str, int | str]] = set()  # sent, not finished: not re-sent

        async def sync_profile(profile_id: str) -> bool:
            async def work() -> bool:
                outcome: Outcome = await sync.sync_profile(profile_id)
                if outcome.ran:
                    self.wake()  # notifications it queued go out now, not at the next tick
                return outcome.ran
            return bool(await self._run("sync", profile_id, work))

        async def apply_write(managed_id: int) -> bool:
            async def work() -> bool:
                applied: Applied = await outbox.apply(managed_id)
                if applied.ok:
                    self.wake()
                return applied.ok
            return bool(await self._run("write", managed_id, work))

        async def deliver(notification_id: int) -> bool:
            async def work() -> bool:
                assert deliverer is not None
                delivered: Delivered = await deliverer.deliver(notification_id)
                if delivered.ok:
                    self.wake()  # the channel's next notification, if any
                return delivered.ok
            return bool(await self._run("notification", notification_id, work))

        async def deliver_invite_notice(notice_id: int) -> bool:
            async def work() -> bool:
                assert invites is not None
                delivered: Delivered = await invites.deliver(notice_id)
                return delivered.ok
            return bool(await self._run("invite_notice", notice_id, work))

        async def send_answer(answer_id: int) -> bool:
            async def work() -> bool:
                answered: Answered = await answers.apply(answer_id)
                return answered.ok
            return bool(await self._run("answer", answer_id, work))

        async def apply_external(write_id: int) -> bool:
            async def work() -> bool:
                assert external is not None
                applied: ExternalApplied = await external.apply(write_id)
                if applied.ok:
                    self.wake()  # the sync it asked for
                return applied.ok
            return bool(await self._run("external", write_id, work))

        async def keep_channels(profile_id: str) -> int:
            async def work() -> int:
                return await push.maintain(profile_id) if push is not None else 0
            return int(await self._run("channels", profile_id, work) or 0)

        async def read_channels(profile_id: str) -> bool:
            async def work() -> bool:
                wanted = await pull.read(profile_id) if pull is not None else False
                if wanted:
                    self.wake()  # the sync it asked for starts now
                return wanted
            return bool(await self._run("pull", profile_id, work))

        self._channels = self.broker.register_task(keep_channels, "calgate.keep_channels")
        self._pull = self.broker.register_task(read_channels, "calgate.read_channels")
        self._answer = self.broker.register_task(send_answer, "calgate.send_answer")
        self._external = self.broker.register_task(apply_external, "calgate.apply_external")
        self._sync = self.broker.register_task(sync_profile, "calgate.sync_profile")
        self._apply = self.broker.register_task(apply_write, "calgate.apply_write")
        self._deliver = self.broker.register_task(deliver, "calgate.deliver")
        self._deliver_invite = self.broker.register_task(deliver_invite_notice,
                                                         "calgate.deliver_invite_notice")

    async def _run(self, kind: str, key: int | str,
                   work: Callable[[], Awaitable[T]]) -> T | None:
        """Run one task when a slot is free (at most ``concurrency`` at once), unless the
        worker is stopping; while it runs, what it claims is ``held``."""
        if self._slots is None:
            self._slots = anyio.Semaphore(self.concurrency)
        try:
            async with self._slots:
                if self.stopping:
                    return None
                with self._holding(kind, key):
                    return await work()
        finally:
            self.queued.discard((kind, key))

    async def _send(self, task: Any, kind: str, keys: Sequence[int | str]) -> int:
        """Send a task for each key not already queued or running here."""
        sent = 0
        for key in keys:
            if (kind, key) in self.queued:
                continue
            self.queued.add((kind, key))
            await task.kiq(key)
            sent += 1
        return sent

    @contextmanager
    def _holding(self, kind: str, key: int | str) -> Iterator[None]:
        self.held.add((kind, key))
        try:
            yield
        finally:
            self.held.discard((kind, key))

    async def drain(self, grace: float) -> int:
        """Stop taking work, let running tasks finish for up to ``grace`` seconds, then hand
        back what is still held (sync leases, claims) so other workers take it over at once
        instead of after the lease. Returns how many were handed back."""
        self.stopping = True
        with anyio.move_on_after(grace):
            while self.held:
                await anyio.sleep(0.05)
        left = sorted(self.held, key=str)
        if left:
            log.warning("shutting down with %d task(s) unfinished; releasing them", len(left))
            await anyio.to_thread.run_sync(self._release, left)
        return len(left)

    def _release(self, held: list[tuple[str, int | str]]) -> None:
        for kind, key in held:
            try:
                if kind == "sync":
                    self.sync.release(str(key))
                elif kind == "write":
                    self.outbox.release(int(key))
                elif kind == "answer":
                    self.answers.release(int(key))
                elif kind == "external" and self.external is not None:
                    self.external.release(int(key))
                elif kind == "notification" and self.deliverer is not None:
                    self.deliverer.release(int(key))
                elif kind == "invite_notice" and self.invites is not None:
                    self.invites.release(int(key))
            except Exception:  # the lease runs out by itself: a delay, never a loss
                log.exception("could not release %s %s", kind, key)

    def wake(self) -> None:
        """Look for due work now (a write was just recorded)."""
        if self._wake is not None:
            self._wake.set()

    async def sweep(self) -> int:
        """Queue every due sync and write; returns how many tasks were sent."""
        if self.stopping:
            return 0
        profiles = await anyio.to_thread.run_sync(self.sync.due_profiles)
        writes = await anyio.to_thread.run_sync(self.outbox.due)
        answers = await anyio.to_thread.run_sync(self.answers.due)
        sent = await self._send(self._apply, "write", writes)
        sent += await self._send(self._answer, "answer", answers)
        if self.external is not None:
            externals = await anyio.to_thread.run_sync(self.external.due)
            sent += await self._send(self._external, "external", externals)
        sent += await self._send(self._sync, "sync", profiles)
        if self.push is not None:
            channels = await anyio.to_thread.run_sync(self.push.due)
            sent += await self._send(self._channels, "channels", channels)
        if self.pull is not None:
            pulls = await anyio.to_thread.run_sync(self.pull.due)
            sent += await self._send(self._pull, "pull", pulls)
        if self.deliverer is not None:
            notices = await anyio.to_thread.run_sync(self.deliverer.due)
            sent += await self._send(self._deliver, "notification", notices)
            await anyio.to_thread.run_sync(self.deliverer.prune)
        if self.invites is not None:
            notices = await anyio.to_thread.run_sync(self.invites.due)
            sent += await self._send(self._deliver_invite, "invite_notice", notices)
            await anyio.to_thread.run_sync(self.invites.prune)
        return sent

    async def _pause(self) -> float:
        """Seconds until the next sweep: the tick, or less when something falls due sooner
        (a profile's next poll; a retry of a write, an answer, a write to an event of others
        or a notification), so polling and retries keep their times instead of waiting for
        the next tick."""
        try:
            due = await anyio.to_thread.run_sync(self._next_due)
        except Exception:  # the sweep reports database trouble; here, just wait a tick
            return self.tick
        if due is None:
            return self.tick
        wait = (due - datetime.now(UTC)).total_seconds()
        return min(self.tick, max(0.25, wait))

    def _next_due(self) -> datetime | None:
        times = [self.sync.next_due(), self.outbox.next_due(), self.answers.next_due()]
        if self.external is not None:
            times.append(self.external.next_due())
        if self.deliverer is not None:
            times.append(self.deliverer.next_due())
        if self.invites is not None:
            times.append(self.invites.next_due())
        known = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times if t is not None]
        return min(known, default=None)

    async def run(self) -> None:
        """Sweep forever (until cancelled)."""
        await self.broker.startup()
        stop = threading.Event()
        if self.wakeups is not None and self.wakeups.enabled:
            token = anyio.lowlevel.current_token()

            def woken() -> None:
                with suppress(RuntimeError):  # the loop is gone: we are stopping anyway
                    anyio.from_thread.run_sync(self.wake, token=token)

            threading.Thread(target=self.wakeups.listen, args=(woken, stop),
                             name="calgate-wakeups", daemon=True).start()
        try:
            while True:
                self._wake = anyio.Event()  # bound to the loop running us
                try:
                    await self.sweep()
                except Exception:
                    log.exception("worker sweep failed; retrying in %.0f s", self.tick)
                with anyio.move_on_after(await self._pause()):
                    await self._wake.wait()
        finally:
            stop.set()
            await self.broker.shutdown()
