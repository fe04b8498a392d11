"""Invitee lists: importing a CSV (all or nothing, every problem by line number), and taking
invitees off an event's list again when nothing was sent to them yet.

Removing undoes a mistaken import (`remove_invitees`, `rsvpmail invitees remove`). It is for
people nothing has reached: an invitation still `pending` (imported, not queued) or `queued`
whose invitation mail the sender has not claimed yet. Removing deletes the rows: their
invitation mail (cancelled first: pending → suppressed through `transition_rows`, a
compare-and-set on its status, so a sender that claimed it meanwhile wins and the removal is
refused), their participant row, their invitation, and the person when nothing else refers to
them (no other event, no unsubscription, no other mail or audit history). One audit row per
invitee remains (machine "invitation", `old_status` → "removed"), naming the address and who
removed it; it is scrubbed with the event's other audit rows when its retention ends.
Deleting the outbox row, not only suppressing it, matters: its idempotency key
`invitation:<id>` would otherwise block a later invitation that gets the same id (SQLite
hands out the highest id again once it is deleted).

Nothing is removed once anything reached them or came from them (the invitation was sent,
bounced, is being sent; they answered or wrote): that is recorded with `rsvpmail answer`, and
their data is erased with `rsvpmail privacy forget`. A removal of several invitees is all or
nothing, and every problem is listed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from db.models import (
    AuditEntry,
    Event,
    InboundMessage,
    Invitation,
    InvitationStatus,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
    Person,
    Unsubscription,
)
from workflows.errors import ConcurrentChange, RsvpError
from workflows.invitations import check_selection
from workflows.seats import lock_event
from workflows.tokens import new_token
from workflows.transitions import RowMove, record_creation, transition_rows

# Accepted header spellings (lowercased, spaces/underscores ignored) → canonical column.
HEADER_ALIASES = {
    "naam": "name",
    "name": "name",
    "volledigenaam": "name",
    "email": "email",
    "e-mail": "email",
    "emailadres": "email",
    "e-mailadres": "email",
    "mail": "email",
    "organisatie": "organisation",
    "organisation": "organisation",
    "organization": "organisation",
    "gemeente": "organisation",
    "functie": "role",
    "role": "role",
    "rol": "role",
    "portefeuille": "role",
    "taal": "language",
    "language": "language",
    "batch": "batch",
    "groep": "batch",
}
REQUIRED = ("name", "email")
LANGUAGE_ALIASES = {
    "": None,
    "nl": "nl",
    "nederlands": "nl",
    "dutch": "nl",
    "en": "en",
    "engels": "en",
    "english": "en",
}
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class InviteeImportError(RsvpError):
    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        listing = "\n".join(f"  {p}" for p in self.problems)
        count = f"{len(self.problems)} problem{'' if len(self.problems) == 1 else 's'}"
        super().__init__(f"{source}: rejected, nothing imported ({count}):\n{listing}")


@dataclass(frozen=True)
class InviteeRow:
    line: int
    name: str
    email: str
    organisation: str
    role: str
    language: str | None
    batch: str


@dataclass(frozen=True)
class ImportResult:
    rows: int
    new_people: int
    updated_people: int
    new_invitations: int
    already_invited: int


def parse_invitee_csv(data: bytes, source: str = "<csv>") -> list[InviteeRow]:
    """Parse and validate the whole file; raise InviteeImportError listing every problem."""
    problems: list[str] = []
    text = _decode(data, source)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InviteeImportError(source, ["line 1: the file is empty; expected a header row"])
    delimiter = _sniff_delimiter(lines[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise InviteeImportError(source, [f"line 1: {exc}"]) from exc
    columns = _map_header(header, problems)
    if problems:
        raise InviteeImportError(source, problems)

    rows: list[InviteeRow] = []
    first_line_of: dict[str, int] = {}
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # Excel leaves blank lines at the end
            if len(record) > len(header) and any(c.strip() for c in record[len(header) :]):
                problems.append(
                    f"line {line}: {len(record)} fields but the header has {len(header)} "
                    f"(is a value containing '{delimiter}' missing its quotes?)"
                )
                continue
            row = _row(record, columns, line, problems)
            if row is None:
                continue
            if row.email in first_line_of:
                first = first_line_of[row.email]
                problems.append(f"line {line}: duplicate email {row.email} (also on line {first})")
                continue
            first_line_of[row.email] = line
            rows.append(row)
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: {exc}")
    if problems:
        raise InviteeImportError(source, problems)
    if not rows:
        raise InviteeImportError(source, ["the file has a header but no invitees"])
    return rows


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        bad_lines = []
        for number, raw_line in enumerate(data.split(b"\n"), start=1):
            try:
                raw_line.decode("utf-8")
            except UnicodeDecodeError:
                bad_lines.append(number)
        shown = ", ".join(str(n) for n in bad_lines[:10]) + (", …" if len(bad_lines) > 10 else "")
        where = f"line {shown}" if len(bad_lines) == 1 else f"lines {shown}"
        raise InviteeImportError(
            source,
            [f"line {n}: not UTF-8 text" for n in bad_lines[:10]]
            + [
                f"the file is not UTF-8 ({where}); in Excel choose "
                "'Save as' → 'CSV UTF-8 (comma delimited)'"
            ],
        ) from None


def _sniff_delimiter(header_line: str) -> str:
    # Dutch Excel uses ';' because ',' is the decimal separator.
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _map_header(header: list[str], problems: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = re.sub(r"[\s_]", "", cell.strip().lower())
        canonical = HEADER_ALIASES.get(key)
        if canonical is None:
            if key:
                problems.append(
                    f"line 1: unknown column {cell.strip()!r} "
                    f"(known: naam/name, email/e-mail, organisatie/organisation, functie/role, "
                    "taal/language, batch)"
                )
            continue
        if canonical in columns:
            problems.append(f"line 1: column {canonical!r} appears twice")
        columns[canonical] = index
    for required in REQUIRED:
        if required not in columns:
            problems.append(
                f"line 1: missing column {required!r} ({'/'.join(_spellings(required))})"
            )
    return columns


def _spellings(canonical: str) -> list[str]:
    return [k for k, v in HEADER_ALIASES.items() if v == canonical][:3]


def _row(
    record: list[str], columns: dict[str, int], line: int, problems: list[str]
) -> InviteeRow | None:
    def cell(name: str) -> str:
        index = columns.get(name)
        return record[index].strip() if index is not None and index < len(record) else ""

    before = len(problems)
    name = cell("name")
    if not name:
        problems.append(f"line {line}: name is empty")
    elif any(ch in name for ch in "\r\n<>"):
        problems.append(f"line {line}: name contains a line break or angle brackets")
    raw_email = cell("email")
    email = parseaddr(raw_email)[1].lower() if raw_email else ""
    if not raw_email:
        problems.append(f"line {line}: email is empty")
    elif not _EMAIL_RE.match(email):
        problems.append(f"line {line}: invalid email address {raw_email!r}")
    language_text = cell("language").lower()
    if language_text not in LANGUAGE_ALIASES:
        problems.append(f"line {line}: unknown language {cell('language')!r} (use nl or en)")
    if len(problems) > before:
        return None
    return InviteeRow(
        line=line,
        name=name,
        email=email,
        organisation=cell("organisation"),
        role=cell("role"),
        language=LANGUAGE_ALIASES[language_text],
        batch=cell("batch"),
    )


def import_invitees(db: Session, event: Event, rows: Sequence[InviteeRow]) -> ImportResult:
    """Upsert people and create their invitations (status pending) in the caller's transaction.

    Re-importing the same list changes nothing but corrected details; nobody is invited twice.
    """
    emails = [r.email for r in rows]
    people = {p.email: p for p in db.scalars(select(Person).where(Person.email.in_(emails)))}
    invited = set(
        db.scalars(
            select(Invitation.person_id).where(
                Invitation.event_id == event.id,
                Invitation.person_id.in_([p.id for p in people.values()]),
            )
        )
    )
    new_people = updated = new_invitations = already = 0
    for row in rows:
        person = people.get(row.email)
        if person is None:
            person = Person(email=row.email)
            db.add(person)
            new_people += 1
        elif (person.name, person.organisation, person.role) != (
            row.name,
            row.organisation or person.organisation,
            row.role or person.role,
        ):
            updated += 1
        person.name = row.name
        person.organisation = row.organisation or person.organisation
        person.role = row.role or person.role
        person.language = row.language or person.language or event.language
        db.flush()
        if person.id in invited:
            already += 1
            continue
        add_invitation(db, event, person, batch=row.batch, reason=f"imported (line {row.line})")
        new_invitations += 1
    return ImportResult(len(rows), new_people, updated, new_invitations, already)


def add_invitation(
    db: Session,
    event: Event,
    person: Person,
    *,
    batch: str,
    reason: str,
    status: InvitationStatus = InvitationStatus.PENDING,
    inbound_message_id: int | None = None,
) -> tuple[Invitation, Participant]:
    """An invitation (with a fresh token) and the participant row it starts as `invited`."""
    invitation = Invitation(
        event_id=event.id, person_id=person.id, token=new_token(), batch=batch, status=status
    )
    db.add(invitation)
    db.flush()
    participant = Participant(
        event_id=event.id,
        person_id=person.id,
        invitation_id=invitation.id,
        status=ParticipantStatus.INVITED,
    )
    db.add(participant)
    record_creation(db, invitation, reason=reason, inbound_message_id=inbound_message_id)
    record_creation(db, participant, reason=reason, inbound_message_id=inbound_message_id)
    return invitation, participant


# ------------------------------------------------------------------------------- removing

REMOVED = "removed"  # new_status of the audit row a removal leaves (the invitation is gone)
_P = ParticipantStatus
_HOLDS_A_PLACE = (_P.REGISTERED, _P.WAITLISTED, _P.OFFERED)
_NOT_COMING = (_P.DECLINED, _P.CANCELLED, _P.EXPIRED)


@dataclass(frozen=True)
class QueuedMail:
    """An outbox row of the invitee in the event: pending (to cancel) or suppressed."""

    id: int
    status: OutboundStatus
    attempts: int  # > 0: tried before, not accepted by the server (a temporary failure)


@dataclass(frozen=True)
class Removal:
    """One invitee to take off an event's list, as read: plain values, no ORM objects."""

    invitation_id: int
    invitation_status: InvitationStatus
    participant_id: int | None
    person_id: int
    email: str
    name: str
    batch: str
    mail: tuple[QueuedMail, ...]
    person_deleted: bool  # nothing else refers to the person: the Person row goes too

    @property
    def cancels(self) -> tuple[QueuedMail, ...]:
        """The invitation mail still waiting in the outbox: cancelled by the removal."""
        return tuple(m for m in self.mail if m.status is OutboundStatus.PENDING)


class RemovalRefused(RsvpError):
    """Some invitees cannot be removed; nothing was. One line for one problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"{self.problems[0]}; nothing removed"
        else:
            listing = "".join(f"\n  {p}" for p in self.problems)
            message = f"nothing removed ({len(self.problems)} problems):{listing}"
        super().__init__(message)


def remove_invitees(
    db: Session,
    event: Event,
    *,
    emails: Sequence[str] = (),
    batch: str | None = None,
    actor: str,
    expected: Collection[int] | None = None,
) -> list[Removal]:
    """Take the named invitees (and/or a whole batch) off the event's list; the caller commits.

    All or nothing: RemovalRefused lists everyone who cannot be removed. `expected` is the
    set of invitation ids the organiser confirmed (from `find_removals`); when the selection
    is no longer exactly that, nothing is removed.
    """
    event = lock_event(db, event)  # serialises with the registration rules of the event
    removals = find_removals(db, event, emails=emails, batch=batch)
    if expected is not None and {r.invitation_id for r in removals} != set(expected):
        raise RsvpError(
            f"the invitees to remove from {event.slug} changed since they were listed "
            "(an import or removal at the same time); nothing removed, run the command again"
        )
    apply_removals(db, event, removals, actor=actor)
    return removals


def find_removals(
    db: Session, event: Event, *, emails: Sequence[str] = (), batch: str | None = None
) -> list[Removal]:
    """Who would be removed, in invitation order; RemovalRefused when anyone cannot be.

    On PostgreSQL the invitations are locked (FOR UPDATE), so a concurrent `invite` either
    queued them before (and the removal sees their mail) or waits and finds them gone.
    """
    if not emails and batch is None:
        raise RsvpError("name who to remove: one or more EMAIL addresses, or --batch NAME")
    problems: list[str] = []
    wanted: list[str] = []
    for text in emails:
        address = text.strip().lower()
        if not _EMAIL_RE.match(address):
            problems.append(f"{text!r} is not an e-mail address")
        elif address not in wanted:
            wanted.append(address)
    if batch is not None:
        check_selection(db, event, batch=batch, only=None)  # an unknown batch names the known
    selected: list[ColumnElement[bool]] = []
    if wanted:
        selected.append(Person.email.in_(wanted))
    if batch is not None:
        selected.append(Invitation.batch == batch)
    found: list[tuple[Invitation, Person]] = []
    if selected:
        query = (
            select(Invitation, Person)
            .join(Person, Person.id == Invitation.person_id)
            .where(Invitation.event_id == event.id, or_(*selected))
            .order_by(Invitation.id)
        )
        if db.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=Invitation)
        found = [(invitation, person) for invitation, person in db.execute(query).all()]
    invited = {person.email for _, person in found}
    problems += [_not_invited(db, event, a) for a in wanted if a not in invited]
    facts = _Facts.read(db, event, [i for i, _ in found])
    removals: list[Removal] = []
    for invitation, person in found:
        problem = facts.problem(event, invitation, person)
        if problem is not None:
            problems.append(problem)
            continue
        participant = facts.participants.get(person.id)
        removals.append(
            Removal(
                invitation_id=invitation.id,
                invitation_status=invitation.status,
                participant_id=participant.id if participant is not None else None,
                person_id=person.id,
                email=person.email,
                name=person.name,
                batch=invitation.batch,
                mail=tuple(
                    QueuedMail(m.id, m.status, m.attempts) for m in facts.mail.get(person.id, [])
                ),
                person_deleted=person.id not in facts.known_elsewhere,
            )
        )
    if problems:
        raise RemovalRefused(problems)
    return removals


@dataclass(frozen=True)
class _Facts:
    """What decides whether the selected invitees can go, read with a few queries."""

    participants: dict[int, Participant]  # person id → their participant row in the event
    mail: dict[int, list[Any]]  # person id → their outbox rows of the event
    wrote: dict[int, int]  # invitation id → messages matched to it
    companions: set[int]  # participant ids someone came along with
    known_elsewhere: set[int]  # person ids with anything outside this event

    @classmethod
    def read(cls, db: Session, event: Event, invitations: Sequence[Invitation]) -> _Facts:
        person_ids = sorted({i.person_id for i in invitations}) or [-1]
        invitation_ids = sorted({i.id for i in invitations}) or [-1]
        participants = {
            p.person_id: p
            for p in db.scalars(
                select(Participant).where(
                    Participant.event_id == event.id, Participant.person_id.in_(person_ids)
                )
            )
        }
        mail: dict[int, list[Any]] = {}
        for row in db.execute(
            select(
                OutboundMessage.id,
                OutboundMessage.person_id,
                OutboundMessage.kind,
                OutboundMessage.status,
                OutboundMessage.attempts,
            )
            .where(OutboundMessage.event_id == event.id, OutboundMessage.person_id.in_(person_ids))
            .order_by(OutboundMessage.id)
        ):
            mail.setdefault(row.person_id, []).append(row)
        wrote: dict[int, int] = {}
        for invitation_id, count in db.execute(
            select(InboundMessage.invitation_id, func.count())
            .where(InboundMessage.invitation_id.in_(invitation_ids))
            .group_by(InboundMessage.invitation_id)
        ):
            if invitation_id is not None:
                wrote[int(invitation_id)] = int(count)
        participant_ids = [p.id for p in participants.values()] or [-1]
        companions = set(
            db.scalars(
                select(Participant.companion_of_id).where(
                    Participant.companion_of_id.in_(participant_ids)
                )
            )
        )
        return cls(
            participants=participants,
            mail=mail,
            wrote=wrote,
            companions={c for c in companions if c is not None},
            known_elsewhere=_known_elsewhere(db, event, person_ids),
        )

    def problem(self, event: Event, invitation: Invitation, person: Person) -> str | None:
        """Why this invitee cannot be removed, with what to do instead; None if they can."""
        a, slug = person.email, event.slug
        forget = f"to erase their data: `rsvpmail privacy forget {a}`"
        decline = f"`rsvpmail answer {slug} {a} --as decline`"
        participant = self.participants.get(person.id)
        status = participant.status if participant is not None else _P.INVITED
        if status in _HOLDS_A_PLACE:
            return (
                f"{a} has answered ({status}): to give up their place use "
                f"`rsvpmail answer {slug} {a} --as cancel`; {forget}"
            )
        if status in _NOT_COMING:
            return f"{a} has answered ({status}) and is not coming, nothing to undo; {forget}"
        if status is not _P.INVITED:
            return f"{a} is marked {status} after the event; {forget}"
        if participant is not None and participant.tentative_at is not None:
            return f"{a} has answered (tentative): to record a no use {decline}; {forget}"
        if participant is not None and participant.id in self.companions:
            return f"{a} has named companions: see `rsvpmail people {slug}`; {forget}"
        written = self.wrote.get(invitation.id, 0)
        if written:
            messages = "a message" if written == 1 else f"{written} messages"
            return (
                f"{a} has written to us about the invitation ({messages}; see `rsvpmail "
                f"audit {slug} --person {a}`): to record that they will not come use "
                f"{decline}; {forget}"
            )
        if invitation.status is InvitationStatus.SENT:
            return (
                f"{a} was sent the invitation already, which cannot be taken back: to record "
                f"that they will not come use {decline}; {forget}"
            )
        if invitation.status is InvitationStatus.UNDELIVERABLE:
            return (
                f"{a} was sent the invitation already and it bounced (undeliverable); it is "
                f"sent again only when named with `rsvpmail invite {slug} --only`; {forget}"
            )
        for row in self.mail.get(person.id, []):
            if row.kind != "invitation":
                return (
                    f"{a} has other mail from this event ({row.kind}, outbox #{row.id}, "
                    f"{row.status}), so this is not an untouched import: see `rsvpmail audit "
                    f"{slug} --person {a}`; to record that they will not come use {decline}"
                )
            if row.status is OutboundStatus.SENDING:
                return (
                    f"{a}: the invitation mail is being sent right now (outbox #{row.id}); "
                    f"once it is sent, record that they will not come with {decline}"
                )
            if row.status in (OutboundStatus.SENT, OutboundStatus.FAILED):
                return (
                    f"{a}: invitation mail was handed to the mail server before (outbox "
                    f"#{row.id}, {row.status}), so it may have reached them: to record that "
                    f"they will not come use {decline}; {forget}"
                )
        return None


def _not_invited(db: Session, event: Event, address: str) -> str:
    """The problem for an address without an invitation to the event."""
    slug = event.slug
    companion = db.scalar(
        select(Participant.status)
        .join(Person, Person.id == Participant.person_id)
        .where(Participant.event_id == event.id, Person.email == address)
    )
    if companion is not None:
        return (
            f"{address} is not on the invitee list of {slug}: they came along with an invitee "
            f"({companion}); to give up the place use `rsvpmail answer {slug} {address} "
            "--as cancel`"
        )
    return f"{address} is not invited to {slug} (see `rsvpmail people {slug}`)"


def _known_elsewhere(db: Session, event: Event, person_ids: Iterable[int]) -> set[int]:
    """The people with anything outside this event, whose Person row must stay: another
    invitation or participation, an unsubscription, other mail, an audit row elsewhere."""
    ids = sorted(set(person_ids)) or [-1]
    other_event = [
        select(Invitation.person_id).where(
            Invitation.person_id.in_(ids), Invitation.event_id != event.id
        ),
        select(Participant.person_id).where(
            Participant.person_id.in_(ids), Participant.event_id != event.id
        ),
        select(Unsubscription.person_id).where(Unsubscription.person_id.in_(ids)),
        select(OutboundMessage.person_id).where(
            OutboundMessage.person_id.in_(ids),
            or_(OutboundMessage.event_id.is_(None), OutboundMessage.event_id != event.id),
        ),
        select(AuditEntry.person_id).where(
            AuditEntry.person_id.in_(ids),
            or_(AuditEntry.event_id.is_(None), AuditEntry.event_id != event.id),
        ),
    ]
    found: set[int] = set()
    for query in other_event:
        found |= {p for p in db.scalars(query) if p is not None}
    return found


def apply_removals(db: Session, event: Event, removals: Sequence[Removal], *, actor: str) -> None:
    """Remove what `find_removals` found, checking as it goes that nothing changed since.

    The invitation mail is cancelled first, each row a compare-and-set on `pending`: a
    sender that claimed it meanwhile wins, and RemovalRefused says so (the caller rolls
    back). Rows are deleted only in the state they were read in; anything else is refused.
    """
    for r in removals:
        for mail in r.cancels:
            move = RowMove(
                mail.id,
                OutboundStatus.PENDING,
                event.id,
                r.person_id,
                f"invitation mail cancelled: invitee removed from the list "
                f"(invitation #{r.invitation_id})",
            )
            try:
                transition_rows(db, OutboundMessage, [move], OutboundStatus.SUPPRESSED, actor=actor)
            except ConcurrentChange:
                raise RemovalRefused(
                    [
                        f"{r.email}: the sender took the invitation mail (outbox #{mail.id}) "
                        "just now, so it may be on its way; once it is sent, record that they "
                        f"will not come with `rsvpmail answer {event.slug} {r.email} "
                        "--as decline`"
                    ]
                ) from None
    _delete_as_read(db, event, removals)
    keep = _known_elsewhere(db, event, [r.person_id for r in removals])
    for r in removals:
        person_deleted = r.person_id not in keep
        details = [f"batch {r.batch!r}"] if r.batch else []
        if r.cancels:
            details.append(
                "invitation mail " + ", ".join(f"#{m.id}" for m in r.cancels) + " cancelled"
            )
        details.append("person deleted" if person_deleted else "person kept (known elsewhere)")
        db.add(
            AuditEntry(
                actor=actor[:200],
                machine="invitation",
                entity_id=r.invitation_id,
                event_id=event.id,
                person_id=None if person_deleted else r.person_id,
                old_status=str(r.invitation_status),
                new_status=REMOVED,
                reason=f"removed from the invitee list: {r.email} ({'; '.join(details)})",
            )
        )
    db.flush()
    deleted = [r.person_id for r in removals if r.person_id not in keep]
    if deleted:
        db.execute(delete(Person).where(Person.id.in_(deleted)))


def _delete_as_read(db: Session, event: Event, removals: Sequence[Removal]) -> None:
    """Delete each invitee's mail, participant row and invitation, each only in the state it
    was read in; anything changed since is refused (the caller rolls back)."""
    for r in removals:
        changed = f"{r.email} changed while being removed (someone acted at the same time)"
        ids = [m.id for m in r.mail]
        if ids and _count(
            db.execute(
                delete(OutboundMessage).where(
                    OutboundMessage.id.in_(ids),
                    OutboundMessage.status == OutboundStatus.SUPPRESSED,
                )
            )
        ) != len(ids):
            raise RemovalRefused([changed])
        left = db.scalar(
            select(func.count()).where(
                OutboundMessage.event_id == event.id, OutboundMessage.person_id == r.person_id
            )
        )
        wrote = db.scalar(
            select(func.count()).where(InboundMessage.invitation_id == r.invitation_id)
        )
        if left or wrote:
            raise RemovalRefused([changed])
        if r.participant_id is not None:
            brought = db.scalar(
                select(func.count()).where(Participant.companion_of_id == r.participant_id)
            )
            deleted = _count(
                db.execute(
                    delete(Participant).where(
                        Participant.id == r.participant_id,
                        Participant.status == ParticipantStatus.INVITED,
                        Participant.tentative_at.is_(None),
                    )
                )
            )
            if brought or deleted != 1:
                raise RemovalRefused([changed])
        deleted = _count(
            db.execute(
                delete(Invitation).where(
                    Invitation.id == r.invitation_id, Invitation.status == r.invitation_status
                )
            )
        )
        if deleted != 1:
            raise RemovalRefused([changed])


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
