"""Deleting server copies of purged mail: the thin IMAP adapter after `purge_expired`.

Retention (workflows.privacy) drops the bytes of old messages from the database, but copies
stay on the mail server: every message the reader filed in Processed/Review/Quarantine, and
our own mail in the Sent folder when one is configured. `housekeeping` runs the purge in a
transaction of its own, commits, and only then deletes those copies on the server (never
network IO inside a transaction):

1. `purge_expired` → `PurgeReport.server_copies` (Message-IDs as they were before any
   anonymisation rewrote them; see below for later runs); commit.
2. The rows say which copies are not yet deleted: an inbound row whose bytes are gone
   (`raw IS NULL`) but which still names a `server_folder`, and sent mail marked
   `sent_copy_pending` (its copy in the Sent folder). That is this run's, any an earlier run
   could not delete (server down, connection lost), and those of `privacy forget`. They
   are retried on every run, so a failure here only delays the deletion.
3. `delete_server_copies`: in each folder we own, UID SEARCH HEADER Message-ID, check the
   exact header (SEARCH matches substrings), STORE \\Deleted, UID EXPUNGE (plain EXPUNGE
   without UIDPLUS).
4. A second small transaction clears `server_folder` and `sent_copy_pending` of the rows
   handled: the copy is nowhere any more.

A message without a usable Message-ID got a synthetic one from the reader: the SHA-256 of
the bytes it fetched (``<hex>@rsvpmail.invalid``, `workflows.inbound.synthetic_message_id`).
Such copies are found the same way: the messages of a folder whose Message-ID header is
missing or unreadable are fetched (whole, or only their header block when larger than
`max_message_bytes`, as the reader did) and hashed.

A Message-ID that named a person was replaced by its hash when the row was anonymised
(``<hex>@anonymised.rsvpmail.invalid``, `workflows.privacy.anonymous_message_id`); the copy
on the server still has the original header. The purge's report holds the original for
its own run, but a retry after a failed deletion, or the deletion `privacy forget` asked
for, only has the row: those copies are found by fetching the Message-ID header of every
message in the folder and hashing it the same way. Nothing of the original is kept.

Nothing here logs an address or a subject: counts and folder names only.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from imap_tools import BaseMailBox
from imap_tools.errors import MailboxFolderSelectError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db.engine import transaction
from db.models import InboundMessage, OutboundMessage
from jobs.imap_reader import check_ok, connect, expunge_uids
from jobs.settings import ImapSettings
from workflows.inbound import read_envelope, synthetic_message_id
from workflows.privacy import (
    ANONYMOUS_MESSAGE_ID_SUFFIX,
    PurgeReport,
    anonymous_message_id,
    purge_expired,
)

log = logging.getLogger("rsvpmail.housekeeping")

# The reader's made-up Message-ID for mail that had none (a hash of its bytes).
SYNTHETIC_SUFFIX = "@rsvpmail.invalid>"
SEARCH_BATCH = 200  # Message-IDs per folder selection before the expunge
_FETCH_ID_RE = re.compile(rb"\bUID (\d+)")
_SIZE_RE = re.compile(rb"\bRFC822\.SIZE (\d+)")


@dataclass
class DeletionReport:
    """What `delete_server_copies` did; `as_dict()` for logs and the service status."""

    requested: int = 0
    deleted: int = 0  # messages flagged and expunged (one Message-ID may have several copies)
    found_ids: set[str] = field(default_factory=set)
    not_found: int = 0  # in none of the folders (already gone, or moved out by a human)
    unsearchable: int = 0  # ids that cannot be in a header (not ASCII, line breaks)
    missing_folders: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "requested": self.requested,
            "deleted": self.deleted,
            "found": len(self.found_ids),
            "not_found": self.not_found,
            "unsearchable": self.unsearchable,
            "missing_folders": sorted(set(self.missing_folders)),
        }


def owned_folders(settings: ImapSettings) -> list[str]:
    """The folders rsvpmail files mail in: the reader's three, and Sent when configured."""
    folders = [settings.processed_folder, settings.review_folder, settings.quarantine_folder]
    if settings.sent_folder:
        folders.append(settings.sent_folder)
    return list(dict.fromkeys(f for f in folders if f))


def searchable(message_id: str) -> bool:
    value = message_id.strip()
    return bool(value) and value.isascii() and not any(c in value for c in '\r\n\x00"\\')


def is_synthetic(message_id: str) -> bool:
    return message_id.lower().endswith(SYNTHETIC_SUFFIX)


def is_anonymised(message_id: str) -> bool:
    """A Message-ID the privacy purge replaced by a hash (the server has the original)."""
    return message_id.lower().endswith(ANONYMOUS_MESSAGE_ID_SUFFIX)


def delete_server_copies(
    settings: ImapSettings,
    message_ids: Iterable[str],
    *,
    extra_folders: Sequence[str] = (),
) -> DeletionReport:
    """Delete every copy of `message_ids` in the folders we own (and `extra_folders`).

    Raises on a connection problem or a command the server refuses; what was expunged
    before that stays expunged, and the caller simply tries again next time.
    """
    wanted = list(dict.fromkeys(m.strip() for m in message_ids if m and m.strip()))
    report = DeletionReport(requested=len(wanted))
    ids = [m for m in wanted if searchable(m)]
    report.unsearchable = len(wanted) - len(ids)
    if not ids:
        return report
    folders = list(dict.fromkeys([*owned_folders(settings), *extra_folders]))
    box = connect(settings)
    try:
        for folder in folders:
            _delete_in_folder(box, folder, ids, report, settings.max_message_bytes)
    finally:
        with contextlib.suppress(Exception):
            box.logout()
        with contextlib.suppress(Exception):
            box.client.shutdown()
    report.not_found = len([m for m in ids if m not in report.found_ids])
    return report


def _delete_in_folder(
    box: BaseMailBox, folder: str, ids: Sequence[str], report: DeletionReport, max_bytes: int
) -> None:
    try:
        box.folder.set(folder)
    except MailboxFolderSelectError:
        report.missing_folders.append(folder)
        return
    synthetic = {m for m in ids if is_synthetic(m)}
    anonymised = {m for m in ids if is_anonymised(m)}
    real = [m for m in ids if m not in synthetic and m not in anonymised]
    for start in range(0, max(len(real), 1), SEARCH_BATCH):
        uids: set[int] = set()
        for message_id in real[start : start + SEARCH_BATCH]:
            found = _uids_with_message_id(box, message_id)
            if found:
                report.found_ids.add(message_id)
                uids.update(found)
        if start == 0 and synthetic:
            for uid, message_id in _uids_with_synthetic_id(box, synthetic, max_bytes):
                report.found_ids.add(message_id)
                uids.add(uid)
        if start == 0 and anonymised:
            for uid, message_id in _uids_with_anonymised_id(box, anonymised):
                report.found_ids.add(message_id)
                uids.add(uid)
        if uids:
            _expunge(box, sorted(uids))
            report.deleted += len(uids)
            log.info(
                "server copies deleted", extra={"fields": {"folder": folder, "count": len(uids)}}
            )


def _uids_with_message_id(box: BaseMailBox, message_id: str) -> list[int]:
    """UIDs in the selected folder whose Message-ID header is exactly `message_id`."""
    # Without the brackets, so a bare "id@host" header (which the reader stored as
    # "<id@host>") is found too; `searchable` keeps quotes and backslashes out.
    needle = '"' + message_id.strip().strip("<>") + '"'
    typ, data = box.client.uid("SEARCH", "HEADER", "Message-ID", needle)
    check_ok(typ, data, "UID SEARCH HEADER Message-ID")
    candidates = [int(x) for x in (data[0].split() if data and data[0] else [])]
    if not candidates:
        return []
    # SEARCH HEADER matches substrings; only a message the reader would have stored under
    # exactly this Message-ID may be deleted.
    typ, data = box.client.uid(
        "FETCH", ",".join(map(str, candidates)), "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
    )
    check_ok(typ, data, "UID FETCH Message-ID")
    exact: list[int] = []
    for uid, _size, head in _fetched(data):
        if read_envelope(head).message_id == message_id:
            exact.append(uid)
    return exact


def _uids_with_synthetic_id(
    box: BaseMailBox, wanted: set[str], max_bytes: int
) -> list[tuple[int, str]]:
    """(UID, id) of messages without a usable Message-ID whose bytes hash to a wanted id."""
    typ, data = box.client.uid("FETCH", "1:*", "(UID RFC822.SIZE BODY.PEEK[HEADER])")
    if typ != "OK":  # an empty folder answers NO/BAD to "1:*" on some servers
        return []
    found: list[tuple[int, str]] = []
    for uid, size, head in _fetched(data):
        if not is_synthetic(read_envelope(head).message_id):
            continue  # has a Message-ID of its own: the header search covers it
        if size > max_bytes:
            raw = head  # the reader stored (and hashed) only the header block
        else:
            typ, body = box.client.uid("FETCH", str(uid), "(UID BODY.PEEK[])")
            check_ok(typ, body, "UID FETCH BODY[]")
            raw = next((b for _u, _s, b in _fetched(body)), b"")
        message_id = synthetic_message_id(raw)
        if message_id in wanted:
            found.append((uid, message_id))
    return found


def _uids_with_anonymised_id(box: BaseMailBox, wanted: set[str]) -> list[tuple[int, str]]:
    """(UID, id) of messages whose Message-ID hashes to a wanted anonymised id."""
    typ, data = box.client.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    if typ != "OK":  # an empty folder answers NO/BAD to "1:*" on some servers
        return []
    found: list[tuple[int, str]] = []
    for uid, _size, head in _fetched(data):
        # Read as the reader read it, so the hash is of the Message-ID it stored.
        message_id = anonymous_message_id(read_envelope(head).message_id)
        if message_id in wanted:
            found.append((uid, message_id))
    return found


def _fetched(data: Sequence[object]) -> list[tuple[int, int, bytes]]:
    """(uid, size or 0, literal) from imaplib FETCH data with one literal per message."""
    out: list[tuple[int, int, bytes]] = []
    for item in data:
        if not isinstance(item, tuple) or len(item) < 2:
            continue
        meta, literal = item[0], item[1]
        if not isinstance(meta, bytes) or not isinstance(literal, bytes):
            continue
        uid = _FETCH_ID_RE.search(meta)
        size = _SIZE_RE.search(meta)
        if uid:
            out.append((int(uid.group(1)), int(size.group(1)) if size else 0, literal))
    return out


def _expunge(box: BaseMailBox, uids: Sequence[int]) -> None:
    expunge_uids(box.client, ",".join(map(str, uids)))


# --------------------------------------------------------------------------- the daily job


@dataclass(frozen=True)
class _Pending:
    inbound_ids: tuple[int, ...]  # rows whose `server_folder` is cleared once deleted
    outbound_ids: tuple[int, ...]  # rows whose `sent_copy_pending` is cleared once deleted
    message_ids: tuple[str, ...]
    folders: tuple[str, ...]


def _pending_copies(db: Session, report: PurgeReport) -> _Pending:
    """This purge's server copies plus earlier ones whose deletion never completed."""
    inbound = db.execute(
        select(InboundMessage.id, InboundMessage.message_id, InboundMessage.server_folder).where(
            InboundMessage.raw.is_(None), InboundMessage.server_folder.is_not(None)
        )
    ).all()
    outbound = db.execute(
        select(OutboundMessage.id, OutboundMessage.message_id).where(
            OutboundMessage.sent_copy_pending.is_(True)
        )
    ).all()
    message_ids = [c.message_id for c in report.server_copies]
    # A row this run anonymised has its copy listed under the original id already; its
    # hashed id would only cost a pass over every Message-ID in the folder (unless the
    # original cannot be searched for: then the hash is the only way to the copy).
    covered = {
        anonymous_message_id(c.message_id) for c in report.server_copies if searchable(c.message_id)
    }
    message_ids += [r.message_id for r in inbound if r.message_id not in covered]
    message_ids += [r.message_id for r in outbound]
    folders = [c.folder for c in report.server_copies if c.folder]
    folders += [r.server_folder for r in inbound if r.server_folder]
    return _Pending(
        inbound_ids=tuple(r.id for r in inbound),
        outbound_ids=tuple(r.id for r in outbound),
        message_ids=tuple(dict.fromkeys(message_ids)),
        folders=tuple(dict.fromkeys(folders)),
    )


def _mark_deleted(factory: sessionmaker[Session], pending: _Pending) -> None:
    """The server confirmed: these copies are nowhere any more."""
    with transaction(factory) as db:
        for chunk in _chunks(pending.inbound_ids):
            db.execute(
                update(InboundMessage)
                .where(InboundMessage.id.in_(chunk), InboundMessage.raw.is_(None))
                .values(server_folder=None)
            )
        for chunk in _chunks(pending.outbound_ids):
            db.execute(
                update(OutboundMessage)
                .where(OutboundMessage.id.in_(chunk))
                .values(sent_copy_pending=False)
            )


def _chunks(ids: Sequence[int], size: int = 500) -> list[Sequence[int]]:
    # Bounded IN lists: SQLite limits the number of parameters in one statement.
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def housekeeping(factory: sessionmaker[Session], settings: ImapSettings) -> dict[str, object]:
    """Apply retention, commit, then delete the purged messages' copies on the server.

    Returns counts for the service log; the purge is committed even when the server part
    fails (it is retried on the next run, see the module docstring).
    """
    with transaction(factory) as db:
        purge = purge_expired(db)
    with factory() as db:
        pending = _pending_copies(db, purge)
    result: dict[str, object] = {
        "purge_changes": purge.changed,
        "server_copies": len(pending.message_ids),
    }
    if not pending.message_ids:
        return result
    try:
        deletion = delete_server_copies(
            settings, pending.message_ids, extra_folders=pending.folders
        )
    except Exception as exc:
        log.warning(
            "deleting server copies failed; retried at the next housekeeping",
            extra={"fields": {"error": f"{type(exc).__name__}: {exc}"[:300],
                              "pending": len(pending.message_ids)}},
        )  # fmt: skip
        result["server_error"] = f"{type(exc).__name__}: {exc}"[:300]
        return result
    _mark_deleted(factory, pending)
    result.update(deletion.as_dict())
    return result


__all__ = [
    "DeletionReport",
    "delete_server_copies",
    "housekeeping",
    "owned_folders",
]
