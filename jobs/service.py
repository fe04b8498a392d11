"""`rsvpmail serve`: the long-running service.

APScheduler is only a timer here. Every tick asks the database what is due and does it, so
the scheduler holds no state: a restart, a missed tick or a second instance never loses or
repeats work. Exactly-once comes from the database (atomic claims, unique outbox keys,
compare-and-set status changes), not from the timer. After downtime every tick runs at
once at start-up and catches up on what fell due meanwhile, once.

Ticks (intervals from the `[ticks]` settings):
- inbox      keeps one mailbox reader running across all instances: the instance holding
             the reader lock runs the IMAP watcher (IDLE with a poll backstop, or one poll
             per tick with `idle = false`); the others check each tick whether the lock has
             come free, which is how a survivor takes over within one tick of a crash.
- outbox     sends what is due, batch by batch, within the shared rate limit.
- offers     expires unanswered seat offers and offers the seats on.
- timeline   reminders, nudges to the unanswered, the registration deadline, follow-ups.
- housekeeping  privacy retention and old server copies (daily; by the mailbox reader).

Several instances need PostgreSQL; on SQLite a second instance refuses to start.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.engine import ensure_migrated, make_sessionmaker
from jobs.locks import AdvisoryLock, InstanceConflict, SqliteInstanceLock, sqlite_path
from jobs.settings import ServiceSettings, TickIntervals

log = logging.getLogger("rsvpmail.service")

READER_LOCK = "rsvpmail:imap-reader"
# Missed ticks are coalesced and run once when late by at most this; later ones are skipped
# (the next tick catches up, since every tick reads what is due from the database).
MISFIRE_GRACE_SECONDS = 30
# How long stop() waits for the mailbox watcher to finish the message in hand.
WATCHER_STOP_SECONDS = 60.0


class _Stopping(Exception):
    """Raised from the outbox's rate-limit wait when the service stops (no mail in hand)."""


@dataclass
class _Watcher:
    thread: threading.Thread
    stop: threading.Event


@dataclass
class Service:
    settings: ServiceSettings
    engine: Engine
    intervals: TickIntervals | None = None  # None: the settings' [ticks]
    name: str = ""
    factory: sessionmaker[Session] = field(init=False)
    stop_event: threading.Event = field(default_factory=threading.Event)
    _worker_id: str = field(default="", init=False)
    _sqlite_lock: SqliteInstanceLock | None = field(default=None, init=False)
    _reader_lock: AdvisoryLock | None = field(default=None, init=False)
    _reading: bool = field(default=False, init=False)
    _watcher: _Watcher | None = field(default=None, init=False)
    _scheduler: BackgroundScheduler | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.factory = make_sessionmaker(self.engine)
        self.name = self.name or self.settings.instance_name or socket.gethostname()
        # Outbox claims belong to one process run: two instances configured with the same
        # instance_name must never settle each other's claims.
        self._worker_id = f"{self.name[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def ticks(self) -> TickIntervals:
        return self.intervals or self.settings.ticks

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Check the database, take the instance lock, start the ticks (all at once)."""
        ensure_migrated(self.engine)
        self._take_instance_locks()
        try:
            self._scheduler = self._start_scheduler()
        except BaseException:
            self._release_instance_locks()
            raise
        log.info(
            "service started",
            extra={"fields": {"instance": self.name, "database": _where(self.engine)}},
        )

    def _start_scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            }
        )
        for name, interval, func in self._tick_jobs():
            scheduler.add_job(
                self._guarded(name, func), "interval", seconds=interval, id=name, name=name,
                next_run_time=datetime.now().astimezone(),
            )  # fmt: skip
        scheduler.start()
        return scheduler

    def wait(self) -> None:
        """Block until stop_event is set (by a signal or another thread)."""
        while not self.stop_event.wait(1.0):
            pass

    def stop(self) -> None:
        """Finish the jobs and the message in hand, release the locks. Safe to call twice."""
        self.stop_event.set()
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)  # waits for running ticks
        self._stop_watcher()
        self._release_instance_locks()
        if scheduler is not None:
            log.info("service stopped", extra={"fields": {"instance": self.name}})

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info(
                "signal received: finishing the mail in hand",
                extra={"fields": {"signal": signal.Signals(signum).name}},
            )
            self.stop_event.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run_once(self) -> dict[str, Any]:
        """Every job once, in the order that lets one run finish a whole exchange (for cron
        and tests). Takes and releases the same locks as a running service.

        A failing job does not stop the others (an unreachable IMAP server must not keep the
        outbox from going out); its entry is `{"error": "..."}`, see `failed_jobs`.
        """
        ensure_migrated(self.engine)
        self._take_instance_locks()
        try:
            return {name: self._once(name, func) for name, func in self._jobs_in_order()}
        finally:
            self._release_instance_locks()

    def _jobs_in_order(self) -> list[tuple[str, Callable[[], object]]]:
        return [
            ("inbox", self._read_inbox_if_reader),
            ("offers", self.expire_offers),
            ("timeline", self.run_timeline),
            ("outbox", self.send_outbox),
            ("housekeeping", self.housekeeping),
        ]

    def _once(self, name: str, func: Callable[[], object]) -> object:
        try:
            return func()
        except Exception as exc:
            _log_failure("job failed", exc, job=name, instance=self.name)
            return {"error": _one_line(exc)}

    def _read_inbox_if_reader(self) -> object:
        if not self._holds_reader_lock():
            return "skipped: another instance reads the mailbox"
        return self.read_inbox_once()

    def _take_instance_locks(self) -> None:
        path = sqlite_path(self.engine)
        if path is not None:
            lock = SqliteInstanceLock(path)
            lock.acquire()  # InstanceConflict when another instance uses the file
            self._sqlite_lock = lock
        elif self.engine.dialect.name == "postgresql":
            self._reader_lock = AdvisoryLock(self.engine, READER_LOCK)

    def _release_instance_locks(self) -> None:
        if self._reader_lock is not None:
            self._reader_lock.release()
            self._reader_lock = None
        if self._sqlite_lock is not None:
            self._sqlite_lock.release()
            self._sqlite_lock = None
        self._reading = False

    # -- ticks ---------------------------------------------------------------------------

    def _tick_jobs(self) -> list[tuple[str, float, Callable[[], object]]]:
        ticks = self.ticks
        return [
            ("inbox", ticks.inbox, self.tend_inbox),
            ("outbox", ticks.outbox, self.send_outbox),
            ("offers", ticks.offers, self.expire_offers),
            ("timeline", ticks.timeline, self.run_timeline),
            ("housekeeping", ticks.housekeeping, self.housekeeping),
        ]

    def _guarded(self, name: str, func: Callable[[], object]) -> Callable[[], None]:
        """A failing tick is logged and retried at the next tick; it never kills the service."""

        def run() -> None:
            if self.stop_event.is_set():
                return
            try:
                func()
            except Exception as exc:
                _log_failure("tick failed; retrying at the next tick", exc, tick=name,
                             instance=self.name)  # fmt: skip

        return run

    # -- inbox ---------------------------------------------------------------------------

    def _holds_reader_lock(self) -> bool:
        """Whether this instance may read the mailbox now; logs when that changes."""
        if self._reader_lock is None:
            held = True  # SQLite: the instance lock already makes this the only instance
        else:
            try:
                held = self._reader_lock.try_acquire()
            except Exception as exc:  # database unreachable: we can no longer be sure
                log.warning("cannot check the reader lock", extra={"fields": {
                    "instance": self.name, "error": _one_line(exc)}})  # fmt: skip
                held = False
        if held != self._reading:
            self._reading = held
            message = "reader lock taken" if held else "reader lock lost"
            log.info(message, extra={"fields": {"instance": self.name, "lock": READER_LOCK}})
        return held

    def tend_inbox(self) -> None:
        """Read the mailbox if this instance holds the reader lock, and only then.

        When the lock is lost (our database connection dropped and another instance took
        over) the watcher is stopped here, so two readers overlap by at most one tick; the
        reader's Message-ID de-duplication keeps even that overlap from applying anything
        twice.
        """
        if not self._holds_reader_lock():
            self._stop_watcher()
            return
        if not self.settings.imap.idle:
            self.read_inbox_once()
            return
        if self._watcher is None or not self._watcher.thread.is_alive():
            self._start_watcher()

    def _start_watcher(self) -> None:
        stop = threading.Event()
        thread = threading.Thread(
            target=self._watch_inbox, args=(stop,), name="imap-watcher", daemon=True
        )
        self._watcher = _Watcher(thread, stop)
        thread.start()

    def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is None:
            return
        watcher.stop.set()
        watcher.thread.join(timeout=WATCHER_STOP_SECONDS)
        if watcher.thread.is_alive():
            log.warning("mailbox watcher did not stop in time", extra={"fields": {
                "instance": self.name, "waited_s": WATCHER_STOP_SECONDS}})  # fmt: skip

    def _watch_inbox(self, stop: threading.Event) -> None:
        from jobs.imap_reader import run_forever

        log.info("watching the mailbox", extra={"fields": {
            "instance": self.name, "user": self.settings.imap.user}})  # fmt: skip
        try:
            # Reconnects by itself; returns once `stop` is set, the message in hand finished.
            run_forever(self.factory, self.settings.imap, stop)
        except Exception:
            log.exception("mailbox watcher failed; the next inbox tick restarts it")

    def read_inbox_once(self) -> object:
        from jobs.imap_reader import run_once

        return run_once(self.factory, self.settings.imap)

    # -- outbox --------------------------------------------------------------------------

    def send_outbox(self) -> object:
        """Send what is due, one batch per call to the sender, so that a stop request is
        honoured between batches: the mail in hand is finished, the rest stays queued."""
        from jobs.smtp_sender import SendReport, send_due

        batch = max(1, self.settings.smtp.batch_size)
        total = SendReport()
        while not self.stop_event.is_set():
            try:
                report = send_due(
                    self.factory, self.settings, worker=self._worker_id,
                    max_messages=batch, sleep=self._wait_unless_stopping,
                )  # fmt: skip
            except _Stopping:
                break
            _add_up(total, report)
            if report.handled < batch:
                break  # nothing more is due
        return total

    def _wait_unless_stopping(self, seconds: float) -> None:
        # The sender waits for the rate limit with nothing in hand: the moment to stop.
        if self.stop_event.wait(seconds):
            raise _Stopping

    # -- offers, timeline, housekeeping --------------------------------------------------

    def expire_offers(self) -> int:
        from workflows.registration import expire_offers
        from workflows.timeline import due_events

        expired = 0
        for event_id in self._event_ids(due_events):
            # One transaction per event: a failure in one never blocks the others.
            with self._transaction() as db:
                expired += len(expire_offers(db, _event(db, event_id)))
        return expired

    def run_timeline(self) -> int:
        from workflows import timeline

        steps: tuple[Callable[[Session, Any], int | bool], ...] = (
            timeline.close_registration,
            timeline.queue_unanswered_nudges,
            timeline.queue_due_reminders,
            timeline.queue_followups,
        )
        queued = 0
        for event_id in self._event_ids(timeline.due_events):
            for step in steps:
                # One transaction per step and event: a failure in one never blocks the others.
                with self._transaction() as db:
                    queued += int(step(db, _event(db, event_id)))
        return queued

    def housekeeping(self) -> object:
        """Retention: by the mailbox reader only, since it deletes server copies too."""
        if not self._holds_reader_lock():
            return "skipped: another instance reads the mailbox"
        try:
            module = importlib.import_module("jobs.imap_housekeeping")
        except ModuleNotFoundError as exc:
            if exc.name != "jobs.imap_housekeeping":
                raise
            # Until the IMAP part lands: the database part alone (retention still holds).
            from workflows.privacy import purge_expired

            with self._transaction() as db:
                return purge_expired(db)
        return module.housekeeping(self.factory, self.settings.imap)

    # -- helpers -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self.factory() as db, db.begin():
            yield db

    def _event_ids(self, due_events: Callable[[Session], list[Any]]) -> list[int]:
        with self.factory() as db:
            return [event.id for event in due_events(db)]


def failed_jobs(report: dict[str, Any]) -> list[str]:
    """The jobs of a `run_once` report that failed."""
    return [
        name for name, result in report.items() if isinstance(result, dict) and "error" in result
    ]


def _event(db: Session, event_id: int) -> Any:
    from db.models import Event

    return db.get_one(Event, event_id)


def _add_up(total: Any, report: Any) -> None:
    for item in dataclasses.fields(report):
        setattr(total, item.name, getattr(total, item.name) + getattr(report, item.name))


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _log_failure(message: str, exc: BaseException, **fields: object) -> None:
    """A server that cannot be reached is one line; anything else gets its traceback."""
    log.error(message, exc_info=not isinstance(exc, OSError),
              extra={"fields": {**fields, "error": _one_line(exc)}})  # fmt: skip


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


__all__ = ["READER_LOCK", "InstanceConflict", "Service", "TickIntervals", "failed_jobs"]
