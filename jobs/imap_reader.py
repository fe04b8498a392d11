"""Reading the mailbox: the thin IMAP adapter in front of `workflows.inbound`.

What happens to one message, in this order (the order is the crash-safety argument):

1. Fetch it by UID without setting \\Seen (BODY.PEEK), in bounded batches above the last UID
   read (`mailbox_states`, per folder, together with the folder's UIDVALIDITY). Its size
   (RFC822.SIZE) is fetched first: a message above `max_message_bytes` is never downloaded
   whole; only its headers are stored, quarantined with the reason, and the full message
   stays on the server in the quarantine folder.
2. ONE transaction: `record_inbound` (stores the bytes, de-duplicates on Message-ID and on
   mailbox/UIDVALIDITY/UID) + `process_inbound` (understands it and applies the rules, moving
   the row received → processed | review | quarantined) + commit. The result and its effects
   are recorded together or not at all.
3. Only then the message is moved on the server to the folder matching the row's status
   (UID MOVE, or COPY + STORE \\Deleted + UID EXPUNGE without MOVE), and a second small
   transaction records `server_folder`/`moved_at` and advances `last_uid`.

A crash before (2) commits leaves nothing behind: the message is still in the folder above
`last_uid` and is read again. A crash between (2) and (3) leaves a row that is decided but not
moved: at every connection the reader first finishes such moves (by UID while UIDVALIDITY is
unchanged, otherwise by Message-ID), and a message read again meets its row through
`record_inbound` (created=False) and is only moved, never applied twice. A crash after the
move but before the bookkeeping is found the same way (the message is then in its target
folder). A changed UIDVALIDITY makes the reader rescan the folder from UID 1; Message-IDs keep
that from processing anything twice, while a row still `received` is processed then.

One bad message never stops the loop: an exception while recording or processing it rolls
its transaction back and it is recorded again as quarantined with the reason; if even that
fails while the database is healthy — or the server refuses to deliver the message at all —
it is moved to the quarantine folder on the server so it is neither lost nor blocking. When
the database itself is unavailable the reader stops and retries later, leaving the mail in
place, rather than quarantining every message; a deadlock is retried once.

Push: `run_forever` keeps one connection in IMAP IDLE (re-issued every few minutes, well
within RFC 2177's 29) with a timed poll as backstop, and reconnects with backoff.
"""

from __future__ import annotations

import contextlib
import imaplib
import io
import logging
import re
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Protocol

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import MailboxFolderSelectError
from imap_tools.utils import encode_folder
from sqlalchemy import case, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.engine import transaction
from db.models import InboundMessage, InboundStatus, MailboxState
from jobs.settings import ImapSettings
from workflows.clock import now
from workflows.transitions import transition

log = logging.getLogger("rsvpmail.imap")

ACTOR = "imap-reader"
# IDLE is re-issued at least this often (RFC 2177: at most 29 minutes), and never later than
# the poll backstop.
IDLE_CYCLE_SECONDS = 300.0
# A waiting IDLE wakes this often to notice the stop event; IDLE itself is not re-issued.
IDLE_SLICE_SECONDS = 0.5
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0
# Bodies of one FETCH command stay under this, whatever batch_size says.
FETCH_BYTES_LIMIT = 32_000_000
# A message that makes the server hang up this often when fetched alone is set aside.
FETCH_STRIKES = 2
# Per mailbox (host, port, user, folder, UIDVALIDITY): UID → times the server hung up while
# fetching it alone (0: it was in a batch that made it hang up). Survives reconnections.
_FETCH_STRIKES: dict[tuple[str, int, str, str, int], dict[int, int]] = {}
_FETCH_STRIKES_LOCK = threading.Lock()
# Pending moves (interrupted, or decided by the organiser since) finished per pass; the rest
# at the next one.
RECONCILE_LIMIT = 5_000
MAX_REASON_CHARS = 2_000
# OperationalError (deadlock, serialisation failure) with a healthy database: tries per message.
TRANSIENT_ATTEMPTS = 2


# -- the workflow functions the reader drives ------------------------------------------


class Recorder(Protocol):
    def __call__(
        self, db: Session, raw: bytes, *, mailbox: str, uidvalidity: int | None, uid: int | None
    ) -> tuple[InboundMessage, bool]: ...


class Processor(Protocol):
    def __call__(self, db: Session, inbound: InboundMessage) -> InboundStatus: ...


@dataclass(frozen=True)
class Pipeline:
    """`workflows.inbound`'s two steps; replaceable so tests can inject faults."""

    record: Recorder
    process: Processor


def default_pipeline() -> Pipeline:
    from workflows.inbound import process_inbound, record_inbound

    return Pipeline(record=record_inbound, process=process_inbound)


@dataclass
class ReadReport:
    """What one read did; counts by the status each new message ended in."""

    fetched: int = 0
    processed: int = 0
    review: int = 0
    quarantined: int = 0
    duplicates: int = 0  # already recorded (same Message-ID): moved, not applied again
    oversized: int = 0  # also counted in quarantined
    unrecorded: int = 0  # could not be stored at all: moved to the quarantine folder
    moved: int = 0
    moves_finished: int = 0  # moves a crash had interrupted, finished at connect
    uidvalidity_changes: int = 0

    def count(self, status: InboundStatus) -> None:
        if status is InboundStatus.PROCESSED:
            self.processed += 1
        elif status is InboundStatus.REVIEW:
            self.review += 1
        elif status is InboundStatus.QUARANTINED:
            self.quarantined += 1

    def add(self, other: ReadReport) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


class DatabaseUnavailable(RuntimeError):
    """The database failed, not the message: stop, leave the mail in place, retry later."""


class ImapCommandError(RuntimeError):
    """The server answered NO/BAD to a command the reader needs."""


# -- connecting --------------------------------------------------------------------------


def connect(settings: ImapSettings) -> BaseMailBox:
    """A logged-in mailbox per `settings.tls` (none | starttls | ssl), always with a timeout."""
    box: BaseMailBox
    if settings.tls == "ssl":
        box = MailBox(
            settings.host, settings.port, timeout=settings.timeout,
            ssl_context=ssl.create_default_context(),
        )  # fmt: skip
    elif settings.tls == "starttls":
        box = MailBoxStartTls(
            settings.host, settings.port, timeout=settings.timeout,
            ssl_context=ssl.create_default_context(),
        )  # fmt: skip
    else:
        box = MailBoxUnencrypted(settings.host, settings.port, timeout=settings.timeout)
    try:
        box.login(settings.user, settings.password, initial_folder=None)
        _refresh_capabilities(box)
    except BaseException:
        with contextlib.suppress(Exception):
            box.client.shutdown()
        raise
    return box


def _refresh_capabilities(box: BaseMailBox) -> None:
    # Servers announce MOVE, UIDPLUS, … only after login; imaplib keeps the greeting's list.
    typ, data = box.client.capability()
    if typ == "OK" and data and isinstance(data[-1], bytes):
        box.client.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())


@contextlib.contextmanager
def _session(settings: ImapSettings) -> Iterator[BaseMailBox]:
    box = connect(settings)
    try:
        yield box
    finally:
        # A dead connection must not hide the error that killed it.
        with contextlib.suppress(Exception):
            box.logout()
        with contextlib.suppress(Exception):
            box.client.shutdown()


# -- entry points ------------------------------------------------------------------------


def run_once(
    factory: sessionmaker[Session], settings: ImapSettings, *, pipeline: Pipeline | None = None
) -> ReadReport:
    """Connect, finish interrupted moves, read everything new, disconnect."""
    report = ReadReport()
    with _session(settings) as box:
        reader = InboxReader(box, factory, settings, pipeline or default_pipeline(), report)
        reader.prepare()
        reader.read_new()
    return report


def run_forever(
    factory: sessionmaker[Session],
    settings: ImapSettings,
    stop_event: threading.Event,
    *,
    pipeline: Pipeline | None = None,
    waiting: threading.Event | None = None,
) -> ReadReport:
    """Read until `stop_event` is set: IDLE (or poll) for new mail, reconnect on failure.

    `waiting` is set each time the reader has read everything and starts waiting for mail.
    On stop, the message in hand is finished (committed and moved) before returning.
    """
    pipeline = pipeline or default_pipeline()
    total = ReadReport()
    backoff = FIRST_BACKOFF_SECONDS
    while not stop_event.is_set():
        report = ReadReport()
        try:
            with _session(settings) as box:
                reader = InboxReader(box, factory, settings, pipeline, report)
                reader.prepare()
                backoff = FIRST_BACKOFF_SECONDS
                while not stop_event.is_set():
                    reader.read_new(stop_event)
                    if stop_event.is_set():
                        break
                    if waiting is not None:
                        waiting.set()
                    reader.wait_for_mail(stop_event)
                    # Rows an organiser decided meanwhile (review resolved, quarantine
                    # released or dismissed) move to their folder without a reconnection.
                    reader.finish_interrupted_moves()
        except Exception as exc:
            log.warning(
                "mailbox connection ended; reconnecting",
                exc_info=not isinstance(exc, OSError | DatabaseUnavailable),
                extra={"fields": {"error": _one_line(exc), "retry_in_s": backoff}},
            )
            stop_event.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        finally:
            total.add(report)
    return total


# -- one connection ----------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    uid: int
    size: int | None
    data: bytes | None  # the whole message, or only its headers when oversized


@dataclass(frozen=True)
class Placement:
    """Where a handled message goes on the server, and the row that says so."""

    uid: int
    folder: str
    row_id: int | None


@dataclass
class InboxReader:
    box: BaseMailBox
    factory: sessionmaker[Session]
    settings: ImapSettings
    pipeline: Pipeline
    report: ReadReport
    uidvalidity: int = 0

    @property
    def folder(self) -> str:
        return self.settings.folder

    def folder_for(self, status: InboundStatus) -> str:
        return {
            InboundStatus.PROCESSED: self.settings.processed_folder,
            InboundStatus.REVIEW: self.settings.review_folder,
            InboundStatus.QUARANTINED: self.settings.quarantine_folder,
        }[status]

    # -- start of a connection ---------------------------------------------------------

    def prepare(self) -> None:
        self._ensure_folders()
        self.uidvalidity = self._select(self.folder)
        self.finish_interrupted_moves()

    def _ensure_folders(self) -> None:
        existing = {info.name for info in self.box.folder.list()}
        for name in (
            self.settings.processed_folder,
            self.settings.review_folder,
            self.settings.quarantine_folder,
        ):
            if name not in existing:
                log.info("creating folder", extra={"fields": {"folder": name}})
                self.box.folder.create(name)

    def _select(self, folder: str) -> int:
        """SELECT `folder` read-write; returns its UIDVALIDITY."""
        self.box.folder.set(folder)
        _typ, data = self.box.client.response("UIDVALIDITY")
        if data and data[0]:
            return int(data[0])
        return int(self.box.folder.status(folder, ["UIDVALIDITY"])["UIDVALIDITY"])

    # -- reading new mail --------------------------------------------------------------

    def read_new(self, stop: threading.Event | None = None) -> None:
        """Ingest every message above `last_uid`, batch by batch, until none is left."""
        last_uid = self._start_uid()
        size = max(1, self.settings.batch_size)
        while not _stopped(stop):
            uids = self._uids_above(last_uid)
            if not uids:
                return
            for start in range(0, len(uids), size):
                batch = uids[start : start + size]
                done_up_to = self._ingest_batch(batch, stop)
                if done_up_to is not None:
                    last_uid = max(last_uid, done_up_to)
                if _stopped(stop):
                    return

    def _start_uid(self) -> int:
        with transaction(self.factory) as db:
            state = db.get(MailboxState, self.folder)
            if state is None:
                return 0
            if state.uidvalidity != self.uidvalidity:
                log.warning(
                    "UIDVALIDITY changed: rescanning the folder; Message-IDs prevent double "
                    "processing",
                    extra={"fields": {"folder": self.folder, "old": state.uidvalidity,
                                      "new": self.uidvalidity}},
                )  # fmt: skip
                self.report.uidvalidity_changes += 1
                state.uidvalidity = self.uidvalidity
                state.last_uid = 0
                return 0
            return state.last_uid

    def _uids_above(self, last_uid: int) -> list[int]:
        typ, data = self.box.client.uid("SEARCH", f"UID {last_uid + 1}:*")
        check_ok(typ, data, "UID SEARCH")
        found = data[0].split() if data and data[0] else []
        # "n:*" always includes the highest UID, even when it is below n.
        return sorted(uid for uid in (int(x) for x in found) if uid > last_uid)

    def _ingest_batch(self, uids: Sequence[int], stop: threading.Event | None) -> int | None:
        """Handle `uids` in order; returns the highest UID up to which all are handled.

        On stop, the message in hand is finished and the rest is left for the next run.
        """
        sizes, unfetchable = self._sizes(uids)
        limit = self.settings.max_message_bytes
        placements: list[Placement] = []
        handled_up_to: int | None = None
        for group in _byte_bounded_groups(uids, sizes, limit):
            if _stopped(stop):
                break
            fetched, failed = self._fetch_group(group, sizes, limit)
            unfetchable.update(failed)
            for uid in group:
                if _stopped(stop):
                    break
                message = fetched.get(uid)
                if uid in unfetchable:
                    placements.append(self._set_aside_unfetchable(uid))
                elif message is not None:
                    placements.append(self._ingest(message))
                # else: expunged by someone else since the search; nothing left to read.
                handled_up_to = uid
        self._move_and_record(placements, progress=handled_up_to)
        return handled_up_to

    def _sizes(self, uids: Sequence[int]) -> tuple[dict[int, int], set[int]]:
        found, failed = self._fetch(uids, "(UID RFC822.SIZE)")
        return {uid: size or 0 for uid, size, _data in found}, set(failed)

    def _fetch_group(
        self, uids: Sequence[int], sizes: dict[int, int], limit: int
    ) -> tuple[dict[int, Fetched], list[int]]:
        small = [uid for uid in uids if uid in sizes and sizes[uid] <= limit]
        large = [uid for uid in uids if uid in sizes and sizes[uid] > limit]
        found: dict[int, Fetched] = {}
        bodies, failed_small = self._fetch(small, "(UID BODY.PEEK[])")
        for uid, _size, data in bodies:
            found[uid] = Fetched(uid, None, data)
        headers, failed_large = self._fetch(large, "(UID BODY.PEEK[HEADER])")
        for uid, _size, data in headers:
            found[uid] = Fetched(uid, sizes[uid], data)
        return found, failed_small + failed_large

    def _fetch(
        self, uids: Sequence[int], parts: str
    ) -> tuple[list[tuple[int, int | None, bytes | None]], list[int]]:
        """UID FETCH; (what came back, UIDs the server cannot deliver).

        A message the server cannot read must not hold up the rest. Servers say so with NO
        (narrowed down here, message by message) or, like Dovecot, by hanging up ("* BYE
        Internal error"). A hang-up is remembered across reconnections: the next connection
        fetches those messages one at a time, and one that makes the server hang up
        FETCH_STRIKES times on its own is given up on.
        """
        if not uids:
            return [], []
        strikes = self._fetch_strikes
        if len(uids) > 1 and any(uid in strikes for uid in uids):
            return self._fetch_one_by_one(uids, parts)
        if len(uids) == 1 and strikes.get(uids[0], 0) >= FETCH_STRIKES:
            log.error(
                "the server hangs up whenever it is asked for this message; setting it aside",
                extra={"fields": {"uid": uids[0], "folder": self.settings.quarantine_folder}},
            )
            return [], list(uids)
        try:
            typ, data = self.box.client.uid("FETCH", compact_uid_set(uids), parts)
        except imaplib.IMAP4.abort:
            # The network, or a message the server cannot read: the next try narrows it down.
            for uid in uids:
                strikes[uid] = strikes.get(uid, 0) + (1 if len(uids) == 1 else 0)
            raise
        except imaplib.IMAP4.error as exc:
            typ, data = "BAD", [str(exc).encode()]
        if typ == "OK":
            if "BODY" in parts:  # only reading the content clears a suspicion, not its size
                for uid in uids:
                    strikes.pop(uid, None)
            return parse_fetch_response(data), []
        if len(uids) == 1:
            log.error(
                "the server refuses to deliver a message",
                extra={"fields": {"uid": uids[0], "answer": f"{typ} {data!r}"[:300]}},
            )
            return [], list(uids)
        return self._fetch_one_by_one(uids, parts)

    def _fetch_one_by_one(
        self, uids: Sequence[int], parts: str
    ) -> tuple[list[tuple[int, int | None, bytes | None]], list[int]]:
        found: list[tuple[int, int | None, bytes | None]] = []
        failed: list[int] = []
        for uid in uids:
            one_found, one_failed = self._fetch([uid], parts)
            found += one_found
            failed += one_failed
        return found, failed

    @property
    def _fetch_strikes(self) -> dict[int, int]:
        key = (self.settings.host, self.settings.port, self.settings.user, self.folder,
               self.uidvalidity)  # fmt: skip
        with _FETCH_STRIKES_LOCK:
            return _FETCH_STRIKES.setdefault(key, {})

    def _set_aside_unfetchable(self, uid: int) -> Placement:
        self.report.fetched += 1
        self.report.unrecorded += 1
        return Placement(uid, self.settings.quarantine_folder, None)

    # -- one message ---------------------------------------------------------------------

    def _ingest(self, message: Fetched) -> Placement:
        """Record and process one message in one transaction; where it goes on the server."""
        self.report.fetched += 1
        raw = message.data or b""
        if message.size is not None:
            return self._quarantine_oversized(message.uid, raw, message.size)
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                placement, status, fresh = self._record_and_process(message.uid, raw)
                break
            except Exception as exc:
                self._raise_if_database_down(exc)
                if isinstance(exc, OperationalError) and attempt < TRANSIENT_ATTEMPTS:
                    # A deadlock or serialisation failure: nothing was kept; try once more.
                    log.warning(
                        "database hiccup; retrying the message",
                        extra={"fields": {"uid": message.uid, "error": _one_line(exc)}},
                    )
                    continue
                return self._quarantine_failed(message.uid, raw, exc)
        if fresh:
            self.report.count(status)
        else:
            self.report.duplicates += 1
        log.info(
            "message read",
            extra={"fields": {"uid": message.uid, "inbound_id": placement.row_id,
                              "status": str(status), "new": fresh}},
        )  # fmt: skip
        return placement

    def _record_and_process(self, uid: int, raw: bytes) -> tuple[Placement, InboundStatus, bool]:
        """The one transaction: store, understand, apply, commit. (placement, status, new?)"""
        with transaction(self.factory) as db:
            row, created = self.pipeline.record(
                db, raw, mailbox=self.folder, uidvalidity=self.uidvalidity, uid=uid
            )
            fresh = created or row.status is InboundStatus.RECEIVED
            if not created and fresh:
                # Recorded before a crash but not processed: take it, once.
                db.refresh(row, with_for_update=True)
                fresh = row.status is InboundStatus.RECEIVED
            status = self.pipeline.process(db, row) if fresh else row.status
            if status is InboundStatus.RECEIVED:
                raise RuntimeError("processing left the message in status 'received'")
            return Placement(uid, self.folder_for(status), row.id), status, fresh

    def _quarantine_oversized(self, uid: int, headers: bytes, size: int) -> Placement:
        reason = (
            f"message is {size:,} bytes, above the limit of {self.settings.max_message_bytes:,} "
            f"(imap.max_message_bytes): only its headers are stored here; the whole message is "
            f"kept on the mail server in folder {self.settings.quarantine_folder!r}"
        )
        self.report.oversized += 1
        return self._record_quarantined(uid, headers, reason, size=size)

    def _quarantine_failed(self, uid: int, raw: bytes, exc: Exception) -> Placement:
        reason = f"could not be processed: {type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]
        log.error(
            "message failed; quarantining it", exc_info=exc,
            extra={"fields": {"uid": uid, "error": _one_line(exc)}},
        )  # fmt: skip
        return self._record_quarantined(uid, raw, reason)

    def _record_quarantined(
        self, uid: int, raw: bytes, reason: str, *, size: int | None = None
    ) -> Placement:
        try:
            with transaction(self.factory) as db:
                row, _created = self.pipeline.record(
                    db, raw, mailbox=self.folder, uidvalidity=self.uidvalidity, uid=uid
                )
                fresh = row.status is InboundStatus.RECEIVED
                if fresh:
                    transition(
                        db, row, InboundStatus.QUARANTINED, reason=reason, actor=ACTOR,
                        inbound_message_id=row.id,
                    )  # fmt: skip
                    row.error = reason
                    if size is not None:
                        row.raw_size = size
                status, row_id = row.status, row.id
        except Exception as exc:
            self._raise_if_database_down(exc)
            # Not even storable: keep it on the server, out of the way, for a human.
            log.error(
                "message could not be recorded; moving it to the quarantine folder on the server",
                exc_info=exc,
                extra={"fields": {"uid": uid, "folder": self.settings.quarantine_folder,
                                  "error": _one_line(exc)}},
            )  # fmt: skip
            self.report.unrecorded += 1
            return Placement(uid, self.settings.quarantine_folder, None)
        if fresh:
            self.report.quarantined += 1
            log.info(
                "message quarantined",
                extra={"fields": {"uid": uid, "inbound_id": row_id, "size": size or len(raw),
                                  "reason": "oversized" if size is not None else "failed"}},
            )  # fmt: skip
        else:
            self.report.duplicates += 1
        return Placement(uid, self.folder_for(status), row_id)

    def _raise_if_database_down(self, exc: Exception) -> None:
        try:
            with transaction(self.factory) as db:
                db.execute(select(1))
        except Exception as probe:
            raise DatabaseUnavailable(f"database unavailable: {_one_line(probe)}") from exc

    # -- moving on the server ------------------------------------------------------------

    def _move_and_record(self, placements: Sequence[Placement], *, progress: int | None) -> None:
        """Move the committed messages, then record where they are and how far we got."""
        by_folder: dict[str, list[Placement]] = defaultdict(list)
        for placement in placements:
            by_folder[placement.folder].append(placement)
        for folder, items in by_folder.items():
            self._move_uids([p.uid for p in items], folder)
        moved_at = now()
        decided = {self.folder_for(status): status for status in InboundStatus
                   if status is not InboundStatus.RECEIVED}  # fmt: skip
        with transaction(self.factory) as db:
            for folder, items in by_folder.items():
                ids = [p.row_id for p in items if p.row_id is not None]
                for chunk in _chunks(ids, 500):
                    # A row an organiser decided again since (a review resolved within the
                    # moment) keeps moved_at unset: its copy goes on to its new folder at
                    # the next pass of finish_interrupted_moves, from where it is now.
                    db.execute(
                        update(InboundMessage)
                        .where(InboundMessage.id.in_(chunk))
                        .values(
                            server_folder=folder,
                            moved_at=case(
                                (InboundMessage.status == decided[folder], moved_at), else_=None
                            ),
                        )
                    )
            if progress is not None:
                self._save_progress(db, progress)
        self.report.moved += len(placements)

    def _save_progress(self, db: Session, last_uid: int) -> None:
        state = db.get(MailboxState, self.folder, with_for_update=True)
        if state is None:
            db.add(
                MailboxState(mailbox=self.folder, uidvalidity=self.uidvalidity, last_uid=last_uid)
            )
        elif state.uidvalidity != self.uidvalidity:
            state.uidvalidity, state.last_uid = self.uidvalidity, last_uid
        elif last_uid > state.last_uid:
            state.last_uid = last_uid

    def _move_uids(self, uids: Sequence[int], folder: str) -> None:
        """Move messages of the selected folder to `folder`."""
        if not uids:
            return
        client = self.box.client
        target = encode_folder(folder).decode("ascii")  # modified UTF-7, quoted
        for chunk in _chunks(list(uids), 500):
            uid_set = compact_uid_set(chunk)
            if "MOVE" in client.capabilities:
                typ, data = client.uid("MOVE", uid_set, target)
                check_ok(typ, data, f"UID MOVE to {folder}")
                continue
            typ, data = client.uid("COPY", uid_set, target)
            check_ok(typ, data, f"UID COPY to {folder}")
            expunge_uids(client, uid_set)

    # -- finishing moves a crash interrupted ---------------------------------------------

    def finish_interrupted_moves(self) -> None:
        """Move decided messages whose move was never recorded (see the module docstring)."""
        with self.factory() as db:
            rows = db.execute(
                select(
                    InboundMessage.id,
                    InboundMessage.message_id,
                    InboundMessage.uid,
                    InboundMessage.uidvalidity,
                    InboundMessage.status,
                    InboundMessage.server_folder,
                )
                .where(
                    InboundMessage.mailbox == self.folder,
                    InboundMessage.uid.is_not(None),
                    InboundMessage.moved_at.is_(None),
                    InboundMessage.status != InboundStatus.RECEIVED,
                )
                .order_by(InboundMessage.id)
                .limit(RECONCILE_LIMIT)
            ).all()
        if not rows:
            return
        log.info("moving decided messages to their folders", extra={"fields": {"count": len(rows)}})
        by_location: dict[str, list[_Pending]] = defaultdict(list)
        for row in rows:
            pending = _Pending(row.id, row.message_id, row.uid, row.uidvalidity,
                               self.folder_for(row.status))  # fmt: skip
            by_location[row.server_folder or self.folder].append(pending)
        for location, items in by_location.items():
            self._finish_moves_from(location, items)
        self._select(self.folder)

    def _finish_moves_from(self, location: str, items: list[_Pending]) -> None:
        settled: list[tuple[int, str | None]] = []  # (row id, where it is now)
        to_move: dict[str, list[tuple[int, int]]] = defaultdict(list)  # target -> (uid, row)
        waiting = [p for p in items if p.target != location]
        settled += [(p.row_id, location) for p in items if p.target == location]
        if waiting and not self._try_select(location):
            log.warning(
                "folder of decided messages is gone; cannot move them",
                extra={"fields": {"folder": location, "count": len(waiting)}},
            )
            settled += [(p.row_id, None) for p in waiting]
            waiting = []
        if waiting:
            present = self._present_by_uid(waiting) if location == self.folder else {}
            for pending in waiting:
                uids = [present[pending.row_id]] if pending.row_id in present else (
                    self._search_message_id(pending.message_id)
                )  # fmt: skip
                for uid in uids:
                    to_move[pending.target].append((uid, pending.row_id))
                if not uids:
                    settled.append((pending.row_id, self._already_in_target(pending)))
                    self._select(location)
            for target, moves in to_move.items():
                self._move_uids(sorted({uid for uid, _ in moves}), target)
                settled += [(row_id, target) for _, row_id in moves]
        moved_at = now()
        with transaction(self.factory) as db:
            for row_id, where in settled:
                values: dict[str, object] = {"moved_at": moved_at}
                if where is not None:
                    values["server_folder"] = where
                db.execute(
                    update(InboundMessage).where(InboundMessage.id == row_id).values(**values)
                )
        self.report.moves_finished += len({row_id for row_id, _ in settled})

    def _try_select(self, folder: str) -> bool:
        try:
            self._select(folder)
        except MailboxFolderSelectError:
            return False
        return True

    def _present_by_uid(self, items: Sequence[_Pending]) -> dict[int, int]:
        """Rows whose message still sits at its UID (same UIDVALIDITY) → that UID."""
        candidates = {p.uid: p.row_id for p in items if p.uidvalidity == self.uidvalidity}
        if not candidates:
            return {}
        found: set[int] = set()
        for chunk in _chunks(sorted(candidates), 500):
            typ, data = self.box.client.uid("SEARCH", f"UID {compact_uid_set(chunk)}")
            check_ok(typ, data, "UID SEARCH")
            found.update(int(x) for x in (data[0].split() if data and data[0] else []))
        return {candidates[uid]: uid for uid in found if uid in candidates}

    def _search_message_id(self, message_id: str) -> list[int]:
        """UIDs in the selected folder whose Message-ID header is `message_id`."""
        needle = message_id.strip()
        if not needle or not needle.isascii() or any(c in needle for c in "\r\n"):
            return []
        quoted = '"' + needle.replace("\\", "\\\\").replace('"', '\\"') + '"'
        typ, data = self.box.client.uid("SEARCH", "HEADER", "Message-ID", quoted)
        check_ok(typ, data, "UID SEARCH HEADER Message-ID")
        return [int(x) for x in (data[0].split() if data and data[0] else [])]

    def _already_in_target(self, pending: _Pending) -> str | None:
        """The target folder when the message is already there (moved before a crash)."""
        self._select(pending.target)
        if self._search_message_id(pending.message_id):
            return pending.target
        log.warning(
            "message of a decided row is not on the server where expected; moved by hand?",
            extra={"fields": {"inbound_id": pending.row_id, "target": pending.target}},
        )
        return None

    # -- waiting for mail ----------------------------------------------------------------

    def wait_for_mail(self, stop: threading.Event) -> None:
        """IDLE until the server reports something, the poll interval passes, or stop."""
        poll = max(0.1, self.settings.poll_seconds)
        if not self.settings.idle or "IDLE" not in self.box.client.capabilities:
            stop.wait(poll)
            return
        # Untagged EXISTS/RECENT of earlier commands pile up in imaplib; we never read them.
        self.box.client.untagged_responses.clear()
        deadline = time.monotonic() + min(poll, IDLE_CYCLE_SECONDS)
        self.box.idle.start()  # type: ignore[no-untyped-call]
        try:
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._news_already_read():
                    break
                slice_seconds = min(IDLE_SLICE_SECONDS, remaining)
                started = time.monotonic()
                if self.box.idle.poll(timeout=slice_seconds):
                    break  # any news: read
                if time.monotonic() - started < slice_seconds / 2:
                    break  # readable but no line: the server closed; DONE below will tell
        finally:
            self.box.idle.stop()  # type: ignore[no-untyped-call]

    def _news_already_read(self) -> bool:
        """News that arrived with the answer to IDLE, where polling the socket cannot see it.

        Mail that lands just before IDLE starts is announced right away: "* N EXISTS" may
        come in the same packet as "+ idling" (and end up in imaplib's read buffer) or even
        before it (and end up among the untagged responses). Waiting on the socket alone
        would then sleep until the next IDLE cycle. The same holds for bytes the TLS layer
        has already decrypted.
        """
        client = self.box.client
        if any(key in client.untagged_responses for key in ("EXISTS", "RECENT", "FETCH")):
            return True
        buffered = client.file
        if not isinstance(buffered, io.BufferedReader):
            return False
        sock = client.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # decrypted by the TLS layer, not yet read
        previous = sock.gettimeout()
        sock.settimeout(0)  # a peek must never block
        try:
            return bool(buffered.peek(1))
        except OSError:
            return False
        finally:
            sock.settimeout(previous)


@dataclass(frozen=True)
class _Pending:
    row_id: int
    message_id: str
    uid: int
    uidvalidity: int | None
    target: str


# -- small helpers -----------------------------------------------------------------------

_UID_RE = re.compile(rb"\bUID (\d+)")
_SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FETCH_START_RE = re.compile(rb"^\d+ \(")


def parse_fetch_response(
    data: Iterable[bytes | tuple[bytes, bytes] | None],
) -> list[tuple[int, int | None, bytes | None]]:
    """imaplib's FETCH data → (uid, RFC822.SIZE, literal) per message.

    A message with a literal arrives as (b"1 (UID 5 BODY[] {42}", b"<42 bytes>") followed by
    the rest of its line (b")" or b" UID 5)" when the server puts UID last); one without a
    literal is a single b"1 (UID 5 RFC822.SIZE 42)".
    """
    records: list[list[bytes | None]] = []  # [meta, literal]
    for item in data:
        if isinstance(item, tuple):
            records.append([item[0], item[1]])
        elif isinstance(item, bytes):
            if _FETCH_START_RE.match(item) or not records:
                records.append([item, None])
            else:
                records[-1][0] = (records[-1][0] or b"") + item
    result: list[tuple[int, int | None, bytes | None]] = []
    for head, literal in records:
        meta = head or b""
        uid_match = _UID_RE.search(meta)
        if uid_match is None:
            continue  # an unsolicited FETCH (e.g. a flag change by another client)
        size_match = _SIZE_RE.search(meta)
        result.append(
            (int(uid_match.group(1)), int(size_match.group(1)) if size_match else None, literal)
        )
    return result


def _byte_bounded_groups(
    uids: Sequence[int], sizes: dict[int, int], limit: int
) -> Iterator[list[int]]:
    """Consecutive groups whose downloaded bytes stay under FETCH_BYTES_LIMIT."""
    group: list[int] = []
    total = 0
    for uid in uids:
        cost = sizes.get(uid, 0) if sizes.get(uid, 0) <= limit else 0
        if group and total + cost > FETCH_BYTES_LIMIT:
            yield group
            group, total = [], 0
        group.append(uid)
        total += cost
    if group:
        yield group


def compact_uid_set(uids: Iterable[int]) -> str:
    """Compact IMAP sequence set: 1,2,3,7 → 1:3,7."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def check_ok(typ: str, data: object, what: str) -> None:
    """Raise ImapCommandError unless the server answered OK."""
    if typ != "OK":
        raise ImapCommandError(f"{what} failed: {typ} {data!r}"[:500])


def expunge_uids(client: imaplib.IMAP4, uid_set: str) -> None:
    """Delete messages of the selected folder for good: flag them \\Deleted, then expunge."""
    typ, data = client.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
    check_ok(typ, data, "UID STORE \\Deleted")
    if "UIDPLUS" in client.capabilities:
        typ, data = client.uid("EXPUNGE", uid_set)
    else:
        # Without UIDPLUS only a plain EXPUNGE exists; it also removes messages others
        # flagged \Deleted in this folder, which is what they asked for anyway.
        typ, data = client.expunge()
    check_ok(typ, data, "EXPUNGE")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
