"""Sending N invitations through rsvpmail's outbox, against plain smtplib (SQLite).

    python -m bench send [--n 5000]

1. Invite N people and queue their invitations (rendered by mail_templates, in chunks of
   100 per transaction, as `rsvpmail invite` does) — timed, reported on its own.
2. Baseline: plain smtplib sends the very same stored bytes over one connection.
3. rsvpmail: jobs.smtp_sender.send_due delivers them — claims, leases, a commit per mail,
   audit rows, the invitation marked sent — over one connection.
4. Peak memory (tracemalloc) of delivering N/4 and N, to show it does not grow with N.

Both senders talk to the same local SMTP sink (aiosmtpd, in its own process, discarding
everything), so the ratio shows rsvpmail's own overhead, not a mail server's. The
database is restored from a snapshot before every pass, so each pass sends the same rows.
Target: rsvpmail's rate ≥ 0.7 × plain smtplib's.
"""

from __future__ import annotations

import argparse
import os
import select as select_module
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

TARGET_RATIO = 0.7
QUEUE_CHUNK = 100
REPO = Path(__file__).resolve().parents[1]
EVENT_TOML = REPO / "events" / "leren-van-rotterdam-zuid.toml"


# ------------------------------------------------------------------------------ the sink


def serve_sink(port: int) -> None:
    """Child process: an SMTP server on `port` that accepts and forgets every message."""
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    controller = Controller(Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


class Sink:
    """The sink in a process of its own, so its CPU time is not taken from the senders."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-c", f"from bench.send import serve_sink; serve_sink({self.port})"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select_module.select([self.process.stdout], [], [], 30)
        if not ready or self.process.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("the SMTP sink did not start within 30 s")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -------------------------------------------------------------------------- the database


@contextmanager
def _database(path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on the SQLite file at `path`; its connections are closed afterwards."""
    from db.engine import make_engine, make_sessionmaker

    engine = make_engine(f"sqlite:///{path}")
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _prepare(path: Path, n: int) -> float:
    """Migrate, load the example event, invite n people, queue all invitations.

    Returns the seconds spent rendering and queueing (inviting people is not timed).
    """
    from db.engine import make_engine, upgrade

    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    with _database(path) as factory:
        return _invite_and_queue(factory, n)


def _invite_and_queue(factory: sessionmaker[Session], n: int) -> float:
    from db.models import Event, Person
    from workflows.event_config import load_event_config
    from workflows.events import apply_event_config
    from workflows.invitations import queue_invitations
    from workflows.invitees import add_invitation

    with factory() as db, db.begin():
        event, _ = apply_event_config(db, load_event_config(EVENT_TOML))
        for i in range(n):
            person = Person(email=f"wethouder{i}@gemeente{i % 97}.example", name=f"Wethouder {i}")
            db.add(person)
            db.flush()
            add_invitation(db, event, person, batch="bench", reason="bench setup")
        event_id = event.id
    started = time.perf_counter()
    while True:
        with factory() as db, db.begin():
            queued = queue_invitations(db, db.get_one(Event, event_id), limit=QUEUE_CHUNK)
        if not queued:
            break
    return time.perf_counter() - started


def _restore(snapshot: Path, work: Path) -> Path:
    """A fresh copy of the queued database (closing the last connection folded its WAL in)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(snapshot, work)
    return work


# ------------------------------------------------------------------------------- passes


@dataclass(frozen=True)
class Pass:
    messages: int
    seconds: float
    peak_bytes: int = 0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def __add__(self, other: Pass) -> Pass:
        return Pass(self.messages + other.messages, self.seconds + other.seconds)


def plain_smtplib(
    factory: sessionmaker[Session], smtp: smtplib.SMTP, after_id: int, n: int
) -> Pass:
    """The baseline: n stored messages (ids after `after_id`) sent with smtplib, nothing else."""
    from db.models import OutboundBody, OutboundMessage
    from workflows.sending import bounce_address

    envelope_from = bounce_address("aanmelden@wijkwijzer.example")
    sent, seconds, last_id = 0, 0.0, after_id
    while sent < n:
        with factory() as db:  # read in chunks, outside the timed part
            chunk = db.execute(
                select(OutboundMessage.id, OutboundMessage.recipient, OutboundBody.raw)
                .join(OutboundBody, OutboundBody.outbound_id == OutboundMessage.id)
                .where(OutboundMessage.id > last_id)
                .order_by(OutboundMessage.id)
                .limit(min(500, n - sent))
            ).all()
        if not chunk:
            break
        started = time.perf_counter()
        for _, recipient, raw in chunk:
            smtp.sendmail(envelope_from, [recipient], raw or b"")
        seconds += time.perf_counter() - started
        sent += len(chunk)
        last_id = chunk[-1][0]
    return Pass(sent, seconds)


def rsvpmail_sender(
    factory: sessionmaker[Session], port: int, limit: int | None, trace: bool = False
) -> Pass:
    from jobs.settings import ServiceSettings, SmtpSettings
    from jobs.smtp_sender import send_due

    settings = ServiceSettings(smtp=SmtpSettings(host="127.0.0.1", port=port, timeout=30))
    if trace:
        tracemalloc.start()
    try:
        report = send_due(factory, settings, worker="bench", max_messages=limit)
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        if trace:
            tracemalloc.stop()
    if report.sent != report.handled:
        raise RuntimeError(f"not everything was sent: {report}")
    return Pass(report.sent, report.seconds, peak)


def compare(work: Path, port: int, n: int, rounds: int) -> tuple[Pass, Pass]:
    """Both senders, the same messages, in alternating rounds.

    Alternating (and swapping who goes first) spreads any change in the machine's load over
    both, which matters on a shared machine more than any single long run would.
    """
    size = -(-n // rounds)
    plain = ours = Pass(0, 0.0)
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
    with _database(work) as factory:
        for round_number in range(rounds):
            count = min(size, n - ours.messages)
            if count <= 0:
                break
            after_id = _nth_id(factory, plain.messages)
            if round_number % 2 == 0:
                plain = plain + plain_smtplib(factory, smtp, after_id, count)
                ours = ours + rsvpmail_sender(factory, port, count)
            else:
                ours = ours + rsvpmail_sender(factory, port, count)
                plain = plain + plain_smtplib(factory, smtp, after_id, count)
        _check_recorded(factory, ours.messages)
    smtp.quit()
    return plain, ours


def _nth_id(factory: sessionmaker[Session], skip: int) -> int:
    """The id after which the baseline continues (it sends the rows in id order too)."""
    if skip == 0:
        return 0
    with factory() as db:
        value = db.execute(
            text("SELECT id FROM outbound_messages ORDER BY id LIMIT 1 OFFSET :n"), {"n": skip - 1}
        ).scalar_one()
    return int(value)


def _check_recorded(factory: sessionmaker[Session], expected: int) -> None:
    with factory() as db:
        sent = db.execute(text("SELECT count(*) FROM outbound_messages WHERE status = 'sent'"))
        invitations = db.execute(text("SELECT count(*) FROM invitations WHERE status = 'sent'"))
        counts = (sent.scalar_one(), invitations.scalar_one())
    if counts != (expected, expected):
        raise RuntimeError(f"expected {expected} mails and invitations sent, found {counts}")


# --------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench send", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n", type=int, default=5000, help="invitations to send (default 5000)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument(
        "--db-dir", type=Path, default=None, help="where the SQLite file lives (default: temp)"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    n = max(8, args.n)
    with tempfile.TemporaryDirectory(prefix="rsvpmail-bench-", dir=args.db_dir) as tmp:
        snapshot, work = Path(tmp) / "snapshot.db", Path(tmp) / "work.db"
        print(f"preparing {n} invitations …", flush=True)
        queue_seconds = _prepare(snapshot, n)
        size = _average_size(snapshot)
        sink = Sink()
        try:
            with _database(_restore(snapshot, work)) as factory:  # warm up sink and caches
                rsvpmail_sender(factory, sink.port, min(n, 200))
            plain, ours = compare(_restore(snapshot, work), sink.port, n, max(1, args.rounds))
            with _database(_restore(snapshot, work)) as factory:
                quarter = rsvpmail_sender(factory, sink.port, n // 4, trace=True)
            with _database(_restore(snapshot, work)) as factory:
                full = rsvpmail_sender(factory, sink.port, None, trace=True)
        finally:
            sink.stop()
    ratio = ours.rate / plain.rate
    print(f"messages: {n}, average size {size / 1024:.1f} KiB, SQLite in {args.db_dir or 'temp'}")
    print(f"machine load (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"render + queue (mail_templates + outbox): {n / queue_seconds:8.1f} msg/s "
        f"({queue_seconds / n * 1000:.2f} ms per mail)"
    )
    print(f"plain smtplib, one connection:            {plain.rate:8.1f} msg/s")
    print(f"rsvpmail sender (claims, commits, audit): {ours.rate:8.1f} msg/s")
    overhead_ms = (ours.seconds - plain.seconds) / n * 1000
    print(
        f"ratio rsvpmail / plain: {ratio:.2f} (target ≥ {TARGET_RATIO}); "
        f"overhead {overhead_ms:.2f} ms per mail"
    )
    growth = full.peak_bytes / max(1, quarter.peak_bytes)
    print(
        f"peak traced memory while sending: {quarter.peak_bytes / 1e6:.1f} MB at "
        f"N/4={quarter.messages}, {full.peak_bytes / 1e6:.1f} MB at N={full.messages} "
        f"(×{growth:.2f} for ×4 the mail)"
    )
    return 0 if ratio >= TARGET_RATIO else 1


def _average_size(path: Path) -> float:
    with _database(path) as factory, factory() as db:
        value = db.execute(text("SELECT avg(length(raw)) FROM outbound_bodies")).scalar_one()
    return float(value or 0)


if __name__ == "__main__":
    sys.exit(main())
