"""Reading N replies from a real Dovecot mailbox, against imap-tools' own fetch-and-parse.

    python -m bench ingest [--n 5000] [--latency-samples 50] [--database-url URL]

1. A private Dovecot (devmail) mailbox is filled with N realistic replies to the example
   event's invitations (LMTP, one connection), on a database holding the real event and
   invitee list (SQLite in a temporary directory unless --database-url is given).
2. Baseline: imap-tools fetches the same mailbox in bulks of 500 without marking mail seen
   and parses every message (.text, .from_) — a warm-up pass, then the timed pass.
3. rsvpmail: `jobs.imap_reader.run_once` ingests everything end to end — fetch, record,
   understand, apply the rules and queue the answers (one transaction per message), move to
   Processed/Review/Quarantine. The time inside the real `process_inbound` is measured too,
   so the reader's own overhead (fetch, store, commit, move) can be told from the rules'.
4. A floor, on a second copy of the same replies: the least any reader that keeps the mail
   must do — fetch in bulks of 500, parse with the reader's own parser, INSERT each message
   (Message-ID, subject, raw bytes) into a bare SQLite table, one commit and one UID MOVE per
   500 — with no understanding, no rules and no ORM. Its ratio bounds what any design could
   reach; what it leaves of the target's time per message is all there would be for reading
   the reply and applying the rules.
5. IDLE latency: `run_forever` waits in IDLE; a reply is APPENDed and the time until its row
   is in the database is measured, over --latency-samples replies one after another.

Targets: rsvpmail's rate ≥ 0.5 × the baseline's; p95 IDLE latency < 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from devmail import MailStack
    from jobs.imap_reader import ReadReport
    from tests.replygen import Invitee

TARGET_RATIO = 0.5
TARGET_P95_SECONDS = 2.0
MAILBOX = "aanmelden@wijkwijzer.example"
# The floor reads its own copy of the replies, so that it meets the same untouched mailbox.
FLOOR_MAILBOX = "floor@wijkwijzer.example"
FLOOR_BULK = 500
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Timed:
    seconds: float
    messages: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else float("inf")


def _prepare_database(url: str) -> tuple[sessionmaker[Session], list[Invitee]]:
    from db.engine import make_engine, make_sessionmaker, upgrade
    from tests import replygen
    from workflows.event_config import load_event_config
    from workflows.events import apply_event_config
    from workflows.invitees import import_invitees, parse_invitee_csv

    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    events = REPO / "events"
    with factory() as db, db.begin():
        config = load_event_config(events / "leren-van-rotterdam-zuid.toml")
        event, _ = apply_event_config(db, config)
        csv = (events / "leren-van-rotterdam-zuid-invitees.csv").read_bytes()
        import_invitees(db, event, parse_invitee_csv(csv))
        db.flush()
        invitees = replygen.invitees_of(db, event)
    return factory, invitees


def imap_tools_baseline(host: str, port: int, password: str) -> Timed:
    from imap_tools import MailBoxUnencrypted

    started = time.perf_counter()
    count = 0
    with MailBoxUnencrypted(host, port, timeout=60).login(MAILBOX, password) as box:
        for message in box.fetch(bulk=500, mark_seen=False):
            _ = message.text, message.from_
            count += 1
    return Timed(time.perf_counter() - started, count)


def floor_reader(host: str, port: int, password: str, database: Path) -> Timed:
    """The least a reader that keeps the mail must do; see the module docstring (4)."""
    import sqlite3

    from imap_tools import MailBoxUnencrypted

    from jobs.imap_reader import check_ok, compact_uid_set, parse_fetch_response
    from workflows.understand import mime

    store = sqlite3.connect(database, isolation_level=None)
    store.execute("PRAGMA journal_mode=WAL")
    store.execute("PRAGMA synchronous=NORMAL")  # as db.engine sets it for SQLite
    store.execute(
        "CREATE TABLE mail (id INTEGER PRIMARY KEY, message_id TEXT UNIQUE, subject TEXT, raw BLOB)"
    )
    started = time.perf_counter()
    count = 0
    with MailBoxUnencrypted(host, port, timeout=60).login(FLOOR_MAILBOX, password) as box:
        box.folder.create("Processed")
        box.folder.set("INBOX")
        typ, data = box.client.uid("SEARCH", "ALL")
        check_ok(typ, data, "UID SEARCH")
        uids = [int(x) for x in data[0].split()]
        for start in range(0, len(uids), FLOOR_BULK):
            chunk = compact_uid_set(uids[start : start + FLOOR_BULK])
            typ, data = box.client.uid("FETCH", chunk, "(UID BODY.PEEK[])")
            check_ok(typ, data, "UID FETCH")
            store.execute("BEGIN IMMEDIATE")
            for _uid, _size, raw in parse_fetch_response(data):
                message = mime.parse(raw or b"")
                store.execute(
                    "INSERT INTO mail (message_id, subject, raw) VALUES (?, ?, ?)",
                    (mime.header(message, "Message-ID"), mime.header(message, "Subject"), raw),
                )
                count += 1
            store.execute("COMMIT")
            typ, data = box.client.uid("MOVE", chunk, "Processed")
            check_ok(typ, data, "UID MOVE")
    seconds = time.perf_counter() - started
    store.close()
    return Timed(seconds, count)


def rsvpmail_reader(
    factory: sessionmaker[Session], host: str, port: int, password: str
) -> tuple[Timed, dict[str, float], ReadReport]:
    """(timing, seconds inside record_inbound and process_inbound, the ReadReport)."""
    import workflows.understand as understanding
    from db.models import InboundMessage, InboundStatus
    from jobs.imap_reader import Pipeline, default_pipeline, run_once
    from jobs.settings import ImapSettings

    real = default_pipeline()
    spent = {"record": 0.0, "process": 0.0, "understand": 0.0}
    # process_inbound imports `understand` from the package at each call: time it there, so
    # the parser's share of process_inbound can be told from the rules' (and the outbox's).
    real_understand = understanding.understand

    def timed_understand(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return real_understand(*args, **kwargs)
        finally:
            spent["understand"] += time.perf_counter() - started

    understanding.understand = timed_understand

    def timed_record(
        db: Session, raw: bytes, *, mailbox: str, uidvalidity: int | None, uid: int | None
    ) -> tuple[InboundMessage, bool]:
        started = time.perf_counter()
        try:
            return real.record(db, raw, mailbox=mailbox, uidvalidity=uidvalidity, uid=uid)
        finally:
            spent["record"] += time.perf_counter() - started

    def timed_process(db: Session, inbound: InboundMessage) -> InboundStatus:
        started = time.perf_counter()
        try:
            return real.process(db, inbound)
        finally:
            spent["process"] += time.perf_counter() - started

    settings = ImapSettings(host=host, port=port, user=MAILBOX, password=password, timeout=60)
    started = time.perf_counter()
    try:
        report = run_once(factory, settings, pipeline=Pipeline(timed_record, timed_process))
    finally:
        understanding.understand = real_understand
    seconds = time.perf_counter() - started
    return Timed(seconds, report.fetched), spent, report


def idle_latencies(
    factory: sessionmaker[Session], stack: MailStack, invitees: Sequence[Invitee], samples: int
) -> list[float]:
    from db.models import InboundMessage
    from jobs.imap_reader import run_forever
    from jobs.settings import ImapSettings
    from tests import replygen

    settings = ImapSettings(
        host=stack.imap_host, port=stack.imap_port, user=MAILBOX, password=stack.password,
        idle=True, poll_seconds=600,  # only IDLE can explain a fast pick-up
    )  # fmt: skip
    stop, waiting = threading.Event(), threading.Event()
    reader = threading.Thread(
        target=run_forever, args=(factory, settings, stop), kwargs={"waiting": waiting}
    )
    reader.start()
    latencies: list[float] = []
    replies = list(replygen.replies(invitees, samples, seed=7, start=10_000_000))
    try:
        with stack.mailbox(MAILBOX) as box:
            for raw in replies:
                if not waiting.wait(30):
                    raise RuntimeError("the reader never went back to waiting for mail")
                waiting.clear()
                message_id = _message_id(raw)
                started = time.perf_counter()
                box.append(raw, "INBOX")
                while True:
                    with factory() as db:
                        found = db.scalar(
                            select(func.count(InboundMessage.id)).where(
                                InboundMessage.message_id == message_id
                            )
                        )
                    if found:
                        break
                    if time.perf_counter() - started > 30:
                        raise RuntimeError("a reply was not recorded within 30 s")
                    time.sleep(0.005)
                latencies.append(time.perf_counter() - started)
    finally:
        stop.set()
        reader.join(30)
    return latencies


def _message_id(raw: bytes) -> str:
    from email.parser import BytesHeaderParser

    return str(BytesHeaderParser().parsebytes(raw)["Message-ID"]).strip()


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def _print_ceilings(
    baseline: Timed, ours: Timed, spent: dict[str, float], rules: float, adapter: float
) -> None:
    """What the ratio would be if a stage cost nothing: explains a gap instead of hiding it.

    imap-tools only fetches and parses lazily; the reader also stores each message, reads it
    fully, applies the rules, queues the answers and commits and moves it, one transaction
    per message (so nothing is lost on a crash).
    """
    baseline_ms = 1000 / baseline.rate if baseline.rate else 0.0
    per_msg = 1000 / max(1, ours.messages)

    def ratio_without(*free: float) -> float:
        ms = (ours.seconds - sum(free)) * per_msg
        return baseline_ms / ms if ms > 0 else float("inf")

    print("  ratio if a stage cost nothing (the gap, explained):")
    print(
        f"    without understand():                        {ratio_without(spent['understand']):.2f}"
    )
    print(f"    without the rules + outbox:                  {ratio_without(rules):.2f}")
    print(f"    without understand, rules and record:        "
          f"{ratio_without(spent['process'], spent['record']):.2f}")  # fmt: skip
    print(f"    fetch + move + commit alone:                 "
          f"{baseline_ms / max(1e-9, adapter * per_msg):.2f}")  # fmt: skip


def _print_floor(baseline: Timed, ours: Timed, floor: Timed) -> None:
    """The floor's ratio, and what the target would leave for reading and the rules."""
    base_ms, ours_ms, floor_ms = (1000 / t.rate for t in (baseline, ours, floor))
    budget_ms = base_ms / TARGET_RATIO  # the target's time per message, all included
    print(f"floor (fetch, parse, INSERT, commit + move per {FLOOR_BULK}; no reading, no rules):")
    print(f"    {floor.rate:8.1f} msg/s ({floor_ms:.2f} ms/msg), ratio {base_ms / floor_ms:.2f}")
    print(f"    at the target, {budget_ms:.2f} ms/msg in all: {budget_ms - floor_ms:.2f} ms "
          f"would be left to read the reply and apply the rules; rsvpmail spends "
          f"{ours_ms - floor_ms:.2f} ms on those")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench ingest", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n", type=int, default=5000, help="replies to ingest (default 5000)")
    parser.add_argument(
        "--latency-samples", type=int, default=50, help="IDLE latency samples (default 50)"
    )
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parser.parse_args(list(argv) if argv is not None else None)
    n = max(10, args.n)
    sys.path.insert(0, str(REPO))  # tests.replygen generates the replies

    from devmail import MailStack
    from tests import replygen

    with tempfile.TemporaryDirectory(prefix="rsvpmail-bench-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'ingest.db'}"
        factory, invitees = _prepare_database(url)
        with MailStack(Path(tmp) / "mail") as stack:
            print(f"delivering {n} replies over LMTP …", flush=True)
            started = time.perf_counter()
            for raw in replygen.replies(invitees, n):
                stack.deliver(raw, [MAILBOX, FLOOR_MAILBOX])
            deliver_seconds = time.perf_counter() - started
            host, port, password = stack.imap_host, stack.imap_port, stack.password
            imap_tools_baseline(host, port, password)  # warm Dovecot's index and caches
            baseline = imap_tools_baseline(host, port, password)
            ours, spent, report = rsvpmail_reader(factory, host, port, password)
            left = stack.message_count(MAILBOX, "INBOX")
            floor = floor_reader(host, port, password, Path(tmp) / "floor.db")
            latencies = idle_latencies(factory, stack, invitees, max(1, args.latency_samples))

    ratio = ours.rate / baseline.rate
    per_msg = 1000 / max(1, ours.messages)
    adapter_seconds = max(1e-9, ours.seconds - spent["record"] - spent["process"])
    p95 = _p95(latencies)
    print(
        f"database: {url.split('://')[0]}; replies: {n} (LMTP delivery {n / deliver_seconds:.0f}/s)"
    )
    print(f"imap-tools fetch(bulk=500) + parse:            {baseline.rate:8.1f} msg/s "
          f"({1000 / baseline.rate:.2f} ms/msg)")  # fmt: skip
    print(f"rsvpmail reader, end to end:                   {ours.rate:8.1f} msg/s "
          f"({ours.seconds * per_msg:.2f} ms/msg)")  # fmt: skip
    print(f"  {report}")
    print("  where the time goes, per message:")
    rules = max(0.0, spent["process"] - spent["understand"])
    parse = spent["understand"]
    print(f"    understand() (parse + classify):             {parse * per_msg:6.2f} ms "
          f"({parse / ours.seconds:.0%})")  # fmt: skip
    print(f"    rules + outbox (match, apply, queue_mail):   {rules * per_msg:6.2f} ms "
          f"({rules / ours.seconds:.0%})")  # fmt: skip
    print(f"    record_inbound (store raw + audit):          {spent['record'] * per_msg:6.2f} ms "
          f"({spent['record'] / ours.seconds:.0%})")  # fmt: skip
    print(f"    fetch + move + commit (the IMAP reader):     {adapter_seconds * per_msg:6.2f} ms "
          f"({adapter_seconds / ours.seconds:.0%})")  # fmt: skip
    print(f"left in INBOX after the read: {left}")
    print(f"ratio rsvpmail / imap-tools: {ratio:.2f} (target ≥ {TARGET_RATIO})")
    _print_ceilings(baseline, ours, spent, rules, adapter_seconds)
    _print_floor(baseline, ours, floor)
    print(
        f"IDLE: APPEND → recorded over {len(latencies)} replies: "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms (target p95 < {TARGET_P95_SECONDS:.0f} s)"
    )
    ok = ratio >= TARGET_RATIO and p95 < TARGET_P95_SECONDS and left == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
