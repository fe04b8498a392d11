"""Marking who came: registered → attended or no_show, from the list kept at the door.

All or nothing, like the invitee import: a list with an unknown address, a typo or someone
who was never registered is rejected whole with every problem listed, because a half-applied
attendance list is harder to repair than a corrected file is to re-run. Re-running the same
list changes nothing.

Lists are additive: a later list (late arrivals) never turns earlier `attended` people into
`no_show` by leaving them out; corrections go through an explicit absent list. `absent_rest`
marks everyone still `registered` and not on the list as `no_show`; it defaults to on once
the event has ended and off while it is still running (people may still walk in).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Event, Participant, ParticipantStatus, Person
from workflows.clock import now
from workflows.errors import RsvpError
from workflows.transitions import transition

PS = ParticipantStatus
# Header spellings of the address column (lowercased, spaces and underscores removed).
EMAIL_HEADERS = frozenset({"email", "e-mail", "emailadres", "e-mailadres", "mail", "mailadres"})
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
# Who can be on an attendance list at all: the registered, and those already marked.
_MARKABLE = (PS.REGISTERED, PS.ATTENDED, PS.NO_SHOW)


class AttendanceError(RsvpError):
    """The list was rejected and nothing was marked; `problems` says what and where."""

    def __init__(self, subject: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        # One line, so the CLI shows it as one `error: …` line.
        super().__init__(
            f"{subject}: rejected, nothing marked ({count}): " + "; ".join(self.problems)
        )


@dataclass(frozen=True)
class ListedEmail:
    """An address on an attendance list, with where it came from (for error messages)."""

    email: str
    where: str  # "present.csv line 4", "--present-email #2"


@dataclass(frozen=True)
class AttendanceChange:
    participant_id: int
    name: str
    email: str
    old_status: str
    new_status: str


@dataclass(frozen=True)
class AttendanceResult:
    attended: tuple[AttendanceChange, ...]  # newly marked present (incl. corrections)
    no_show: tuple[AttendanceChange, ...]  # newly marked absent
    unchanged: int  # listed people whose mark was already right
    absent_rest: bool  # whether unlisted registered people were marked no_show


def parse_attendance_list(data: bytes, source: str) -> list[ListedEmail]:
    """Read a CSV with an email/e-mail column, or a plain list with one address per line.

    Raises AttendanceError listing every unreadable line.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AttendanceError(
            source, ["the file is not UTF-8 text; in Excel save it as 'CSV UTF-8'"]
        ) from None
    lines = text.splitlines()
    first = next((line for line in lines if line.strip() and not _is_comment(line)), None)
    if first is None:
        raise AttendanceError(source, ["the file is empty"])
    if "@" in first:  # a header row never holds an address; a plain list always does
        return _plain_list(lines, source)
    return _csv_list(text, source)


def _plain_list(lines: list[str], source: str) -> list[ListedEmail]:
    entries = [
        (line, f"line {number}", f"{source} line {number}")
        for number, line in enumerate(lines, start=1)
        if line.strip() and not _is_comment(line)
    ]
    return _validated(entries, source)


def _validated(entries: Iterable[tuple[str, str, str]], source: str) -> list[ListedEmail]:
    """(text, where for a problem, where for the list) → addresses; every bad one is
    reported at once, with where it is, and then nothing is listed."""
    listed, problems = [], []
    for text, problem_where, where in entries:
        address = _address(text)
        if address is None:
            problems.append(f"{problem_where}: {text.strip()!r} is not an email address")
        else:
            listed.append(ListedEmail(address, where))
    if problems:
        raise AttendanceError(source, problems)
    return listed


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _csv_list(text: str, source: str) -> list[ListedEmail]:
    header_line = text.lstrip("\r\n").splitlines()[0]
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ";"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    listed: list[ListedEmail] = []
    problems: list[str] = []
    column: int | None = None
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if column is None:
                column = _email_column(record)
                if column is None:
                    cells = ", ".join(repr(c.strip()) for c in record)
                    raise AttendanceError(
                        source,
                        [
                            f"line {reader.line_num}: no column named email/e-mail "
                            f"(found {cells}); or give one address per line"
                        ],
                    )
                continue
            cell = record[column].strip() if column < len(record) else ""
            address = _address(cell)
            if address is None:
                what = f"{cell!r} is not an email address" if cell else "the email is empty"
                problems.append(f"line {reader.line_num}: {what}")
            else:
                listed.append(ListedEmail(address, f"{source} line {reader.line_num}"))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: {exc}")
    if problems:
        raise AttendanceError(source, problems)
    return listed


def _email_column(header: list[str]) -> int | None:
    for index, cell in enumerate(header):
        if re.sub(r"[\s_]", "", cell.strip().lower()) in EMAIL_HEADERS:
            return index
    return None


def _address(text: str) -> str | None:
    """The lowercased address in 'a@b.nl' or 'Name <a@b.nl>', or None when there is none."""
    address = parseaddr(text.strip())[1].lower()
    return address if _EMAIL_RE.match(address) else None


def listed_from_options(addresses: Iterable[str], option: str) -> list[ListedEmail]:
    """Addresses given on the command line, validated like a file's lines."""
    entries = [
        (text, f"{option} #{number}", f"{option} #{number}")
        for number, text in enumerate(addresses, start=1)
    ]
    return _validated(entries, option)


def mark_attendance(
    db: Session,
    event: Event,
    present: Sequence[ListedEmail],
    *,
    actor: str,
    absent: Sequence[ListedEmail] = (),
    absent_rest: bool | None = None,
) -> AttendanceResult:
    """Apply an attendance list in the caller's transaction; all or nothing.

    `absent_rest=None` means: on when the event has ended, off while it is running.
    """
    current = now()
    if current < event.starts_at:
        local = event.starts_at.astimezone(ZoneInfo(event.timezone))
        raise AttendanceError(
            f"attendance for {event.slug}",
            [f"the event has not started yet (it starts {local:%Y-%m-%d %H:%M} {local.tzname()})"],
        )
    if absent_rest is None:
        absent_rest = current >= event.ends_at
    if not present and not absent:
        raise AttendanceError(
            f"attendance for {event.slug}",
            ["nobody is listed as present or absent; give a list of who came"],
        )
    participants = _participants_by_email(db, event)
    problems = _problems(event, participants, present, absent)
    if problems:
        raise AttendanceError(f"attendance for {event.slug}", problems)

    attended: list[AttendanceChange] = []
    no_show: list[AttendanceChange] = []
    unchanged = 0
    present_emails = {item.email for item in present}
    listed = ((present, PS.ATTENDED, "present", attended), (absent, PS.NO_SHOW, "absent", no_show))
    for items, status, label, changes in listed:
        for item in _unique(items):
            participant, person = participants[item.email]
            if participant.status is status:
                unchanged += 1
                continue
            reason = f"{label} ({item.where})"
            changes.append(_move(db, participant, person, status, reason, actor))
    if absent_rest:
        for address, (participant, person) in sorted(participants.items()):
            if participant.status is PS.REGISTERED and address not in present_emails:
                no_show.append(
                    _move(db, participant, person, PS.NO_SHOW, "not on the attendance list", actor)
                )
    return AttendanceResult(tuple(attended), tuple(no_show), unchanged, absent_rest)


def _participants_by_email(db: Session, event: Event) -> dict[str, tuple[Participant, Person]]:
    # Locked on PostgreSQL so two organisers applying lists at once cannot interleave; SQLite
    # already serialises writers (BEGIN IMMEDIATE) and ignores FOR UPDATE.
    rows = db.execute(
        select(Participant, Person)
        .join(Person, Person.id == Participant.person_id)
        .where(Participant.event_id == event.id)
        .order_by(Participant.id)
        .with_for_update(of=Participant)
    )
    return {person.email: (participant, person) for participant, person in rows}


def _problems(
    event: Event,
    participants: dict[str, tuple[Participant, Person]],
    present: Sequence[ListedEmail],
    absent: Sequence[ListedEmail],
) -> list[str]:
    problems = []
    present_where: dict[str, str] = {}
    for item in present:
        present_where.setdefault(item.email, item.where)
    for item in [*present, *absent]:
        found = participants.get(item.email)
        if found is None:
            problems.append(f"{item.where}: {item.email} is not a participant of {event.slug}")
        elif found[0].status not in _MARKABLE:
            problems.append(
                f"{item.where}: {item.email} is {found[0].status.value}, not registered; "
                "only registered people can be marked"
            )
    for item in absent:
        if item.email in present_where:
            also = present_where[item.email]
            problems.append(f"{item.where}: {item.email} is also listed as present ({also})")
    return problems


def _unique(items: Sequence[ListedEmail]) -> list[ListedEmail]:
    """First mention of each address; ticking someone twice is harmless."""
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.email not in seen:
            seen.add(item.email)
            unique.append(item)
    return unique


def _move(
    db: Session,
    participant: Participant,
    person: Person,
    new: ParticipantStatus,
    reason: str,
    actor: str,
) -> AttendanceChange:
    old = participant.status
    transition(db, participant, new, reason=reason, actor=actor)
    return AttendanceChange(participant.id, person.name, person.email, old.value, new.value)
