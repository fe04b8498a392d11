"""Trust: who may act on an invitation, forged senders, mail loops, and unsubscribing.

Every test that touches the database runs on SQLite and on PostgreSQL (conftest). Messages
go through the real parser (`deliver`: record_inbound + process_inbound + commit, what the
IMAP reader does per message), so the rules see what they would see in production.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import random
import urllib.parse
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    AuditEntry,
    AutoAnswerCount,
    Event,
    InboundMessage,
    InboundStatus,
    InvitationStatus,
    OutboundMessage,
    OutboundStatus,
    Participant,
    ParticipantStatus,
    Unsubscription,
)
from tests.factories import event_config as example_config
from tests.mailfactory import REPLY_ADDRESS, ManualClock, World, deliver, reply
from workflows import authresults, tokens
from workflows.events import apply_event_config, event_config
from workflows.inbound import list_review
from workflows.invitations import queue_invitations
from workflows.invitees import add_invitation
from workflows.outbox import MailKind
from workflows.sending import claim_due
from workflows.timeline import queue_due_reminders, queue_followups, queue_unanswered_nudges
from workflows.transitions import transition

P = ParticipantStatus
R = InboundStatus
OUR_MX = "mx.wijkwijzer.example"


def with_headers(raw: bytes, *lines: str) -> bytes:
    """Headers prepended the way a receiving server adds them (on top, CRLF)."""
    return b"".join(f"{line}\r\n".encode() for line in lines) + raw


def audit_count(db: Session) -> int:
    return int(db.scalar(select(func.count(AuditEntry.id))) or 0)


def participant_audits(db: Session, p: Participant) -> list[AuditEntry]:
    return list(
        db.scalars(
            select(AuditEntry)
            .where(AuditEntry.machine == "participant", AuditEntry.entity_id == p.id)
            .order_by(AuditEntry.id)
        )
    )


def review_reason(db: Session, inbound: InboundMessage) -> str:
    return next(i.reason for i in list_review(db) if i.inbound_id == inbound.id)


# =========================================================================== 1. parsing
# Authentication-Results (RFC 8601): pure, no database.


GMAIL_STYLE = (
    "mx.google.com;\r\n"
    "       dkim=pass header.i=@rotterdam.nl header.s=sel1 header.b=Ab/cD+9=;\r\n"
    "       spf=pass (google.com: domain of w@rotterdam.nl designates 192.0.2.1 as permitted "
    "sender) smtp.mailfrom=w@rotterdam.nl;\r\n"
    "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=rotterdam.nl"
)


def test_a_typical_header_is_read_with_its_properties() -> None:
    parsed = authresults.parse(GMAIL_STYLE)
    assert parsed is not None
    assert parsed.authserv_id == "mx.google.com"
    assert [(r.method, r.result) for r in parsed.results] == [
        ("dkim", "pass"),
        ("spf", "pass"),
        ("dmarc", "pass"),
    ]
    dkim, spf, dmarc = parsed.results
    # A base64 signature with "/" and "=" stays one value; comments are gone.
    assert dkim.prop("header.b") == "Ab/cD+9="
    assert dkim.prop("HEADER.I") == "@rotterdam.nl"
    assert spf.prop("smtp.mailfrom") == "w@rotterdam.nl"
    assert dmarc.prop("header.from") == "rotterdam.nl"


def test_comments_case_quotes_versions_and_spacing_are_understood() -> None:
    value = (
        '(the (nested) comment \\) first) "MX.WijkWijzer.Example" 1 (version);'
        ' DKIM/1 = FAIL reason = "signature (did) not verify" header.d = rotterdam.nl;'
        " SPF=SoftFail (comment; with a semicolon) smtp.mailfrom=w@rotterdam.nl"
    )
    parsed = authresults.parse(value)
    assert parsed is not None
    assert (parsed.authserv_id, parsed.version) == (OUR_MX, 1)
    dkim, spf = parsed.results
    assert (dkim.method, dkim.result, dkim.reason) == ("dkim", "fail", "signature (did) not verify")
    assert dkim.prop("header.d") == "rotterdam.nl"
    assert (spf.method, spf.result) == ("spf", "softfail")


def test_a_forgotten_semicolon_still_separates_two_results() -> None:
    value = f"{OUR_MX}; spf=pass smtp.mailfrom=a@b.nl dmarc=fail header.from=b.nl"
    parsed = authresults.parse(value)
    assert parsed is not None
    assert [(r.method, r.result) for r in parsed.results] == [("spf", "pass"), ("dmarc", "fail")]


@pytest.mark.parametrize(
    "value",
    ["", "   ", "(", "(only a comment)", "spf=fail smtp.mailfrom=a@b.nl", ";;;", '"', "=\x00="],
)
def test_a_header_without_an_authserv_id_is_ignored(value: str) -> None:
    assert authresults.parse(value) is None
    assert authresults.authentication_failure([value], [OUR_MX]) is None


def test_none_means_nothing_was_checked() -> None:
    parsed = authresults.parse(f"{OUR_MX} 1; none")
    assert parsed is not None and parsed.results == ()


@pytest.mark.parametrize(
    ("results", "verdict"),
    [
        ("dmarc=fail header.from=rotterdam.nl", "dmarc=fail"),
        ("spf=fail smtp.mailfrom=w@rotterdam.nl", "spf=fail"),
        ("dkim=fail header.d=rotterdam.nl", "dkim=fail"),
        ("dkim=fail header.d=lists.example; dkim=pass header.d=rotterdam.nl", None),
        ("spf=softfail; dkim=neutral; dmarc=none", None),
        ("spf=temperror; dkim=permerror; dmarc=bestguesspass", None),
        ("dkim=pass; spf=pass; dmarc=pass", None),
        ("none", None),
    ],
)
def test_which_results_count_as_a_failure(results: str, verdict: str | None) -> None:
    found = authresults.authentication_failure([f"{OUR_MX}; {results}"], [OUR_MX])
    if verdict is None:
        assert found is None
    else:
        assert found is not None and verdict in found and OUR_MX in found


def test_only_headers_of_trusted_authserv_ids_count() -> None:
    forged = "mx.attacker.example; dmarc=fail; spf=fail; dkim=fail"
    ours = f"{OUR_MX.upper()}; dkim=pass; spf=pass; dmarc=pass"
    assert authresults.authentication_failure([forged, ours], [OUR_MX]) is None
    assert authresults.authentication_failure([forged], []) is None
    assert authresults.authentication_failure([forged], ["MX.Attacker.Example"]) is not None


def test_results_across_several_trusted_headers_are_judged_together() -> None:
    # Some servers write one header per check; a DKIM pass in one outweighs a fail in another.
    headers = [f"{OUR_MX}; dkim=fail header.d=list.example", f"{OUR_MX}; dkim=pass header.d=b.nl"]
    assert authresults.authentication_failure(headers, [OUR_MX]) is None
    headers.append(f"{OUR_MX}; spf=fail smtp.mailfrom=x@b.nl")
    assert "spf=fail" in (authresults.authentication_failure(headers, [OUR_MX]) or "")


def test_garbage_never_raises() -> None:
    rng = random.Random(8601)
    alphabet = ' ;=()"\\./@abcdkimspfdmarcfailpass\r\n\t\x00é'
    for _ in range(3000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        parsed = authresults.parse(value)
        assert parsed is None or isinstance(parsed.authserv_id, str)
        authresults.authentication_failure([value], [OUR_MX, "a"])


# =========================================================================== 1b. in the rules


@pytest.fixture
def guarded(db: Session, clock: ManualClock) -> World:
    """The example event with our receiving server's Authentication-Results trusted."""
    return World(db, clock, trusted_authserv_ids=(OUR_MX,))


@pytest.mark.parametrize(
    ("results", "verdict"),
    [
        (
            "dkim=pass header.d=gemeente1.example; spf=pass; dmarc=fail header.from=x.example",
            "dmarc=fail (header.from=x.example)",
        ),
        (
            "spf=fail (not permitted) smtp.mailfrom=wethouder1@gemeente1.example; dmarc=none",
            "spf=fail (smtp.mailfrom=wethouder1@gemeente1.example)",
        ),
        (
            "dkim=fail (bad signature) header.d=gemeente1.example; spf=none",
            "dkim=fail (header.d=gemeente1.example)",
        ),
    ],
)
def test_a_trusted_authentication_failure_sends_the_reply_to_review(
    db: Session, guarded: World, results: str, verdict: str
) -> None:
    w = guarded
    p = w.invitee()
    before = w.snapshot()[:2]
    raw = with_headers(
        reply(to_token=w.token(p), from_=p.person.email, text="Ja, ik kom graag."),
        f"Authentication-Results: {OUR_MX};\r\n\t{results}",
    )
    inbound = deliver(db, raw)
    assert inbound.status is R.REVIEW
    assert w.snapshot()[:2] == before  # state untouched, nothing mailed
    reason = review_reason(db, inbound)
    assert f"sender authentication failed at {OUR_MX}: {verdict}" in reason
    assert p.person.email in reason


def test_a_failure_reported_by_an_untrusted_server_is_ignored(db: Session, guarded: World) -> None:
    w = guarded
    p = w.invitee()
    raw = with_headers(
        reply(to_token=w.token(p), from_=p.person.email, text="Ja, ik kom graag."),
        "Authentication-Results: mx.elders.example; dmarc=fail; spf=fail; dkim=fail",
    )
    assert deliver(db, raw).status is R.PROCESSED
    assert w.status(p) is P.REGISTERED


def test_without_trusted_ids_the_header_is_not_read(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)  # trusted_authserv_ids = [] as in the example event
    p = w.invitee()
    raw = with_headers(
        reply(to_token=w.token(p), from_=p.person.email, text="Ja, ik kom graag."),
        f"Authentication-Results: {OUR_MX}; dmarc=fail",
    )
    assert deliver(db, raw).status is R.PROCESSED


def test_a_failed_signature_beside_a_passing_one_still_acts(db: Session, guarded: World) -> None:
    w = guarded
    p = w.invitee()
    raw = with_headers(
        reply(to_token=w.token(p), from_=p.person.email, text="Ja, ik kom graag."),
        f"Authentication-Results: {OUR_MX}; dkim=fail header.d=lijst.example;"
        " dkim=pass header.d=gemeente1.example; spf=softfail; dmarc=pass",
        "Authentication-Results: mx.elders.example; dmarc=fail",
    )
    inbound = deliver(db, raw)
    assert inbound.status is R.PROCESSED
    assert w.status(p) is P.REGISTERED


def test_authentication_is_checked_for_a_trusted_secretary_too(
    db: Session, clock: ManualClock
) -> None:
    w = World(
        db, clock, trusted_authserv_ids=(OUR_MX,), allowed_sender_domains=("zwaanshoek.example",)
    )
    p = w.invitee(domain="zwaanshoek.example")
    raw = with_headers(
        reply(to_token=w.token(p), from_="secretariaat@zwaanshoek.example", text="Ja, hij komt."),
        f"Authentication-Results: {OUR_MX}; dmarc=fail header.from=zwaanshoek.example",
    )
    assert deliver(db, raw).status is R.REVIEW
    assert w.status(p) is P.INVITED


# =========================================================================== 2. who may act


def test_a_spoofed_reply_with_a_valid_token_changes_nothing(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    p = w.invitee()
    before, audits = w.snapshot()[:2], len(participant_audits(db, p))
    inbound = w.say(p, "Ja, ik kom graag, met mijn collega Karin Smit.", from_="x@elders.example")
    assert inbound.status is R.REVIEW
    assert inbound.invitation_id == p.invitation_id  # matched, but not applied
    assert w.snapshot()[:2] == before
    assert len(participant_audits(db, p)) == audits
    assert "not by the invitee" in review_reason(db, inbound)


def test_guessed_tokens_never_apply(db: Session, clock: ManualClock) -> None:
    """Random tokens of the right format, and near misses of a real one, from a stranger and
    from another invitee: no invitation but the sender's own is ever touched."""
    w = World(db, clock)
    target = w.invitee()
    other = w.invitee()
    real = w.token(target)
    rng = random.Random(20230201)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    guesses = [tokens.new_token() for _ in range(15)]
    for _ in range(15):  # one character off the real token
        i = rng.randrange(len(real))
        guesses.append(real[:i] + rng.choice(alphabet.replace(real[i], "")) + real[i + 1 :])
    guesses += [real[:-1], real + "a", real[1:] + "a"]
    for guess in guesses:
        assert guess != real
        inbound = deliver(
            db,
            reply(to_token=guess, from_="raden@elders.example", text="Ik moet mij afmelden."),
        )
        assert inbound.status is R.REVIEW
        assert inbound.invitation_id is None
    for guess in guesses[:5]:
        # From an invitee: only their own invitation can be matched (by their address).
        inbound = deliver(db, reply(to_token=guess, from_=other.person.email, text="Ik kom."))
        assert inbound.invitation_id in (None, other.invitation_id)
    assert w.status(target) is P.INVITED
    assert w.kinds_to(target) == []
    touched = db.scalars(
        select(InboundMessage.id).where(InboundMessage.invitation_id == target.invitation_id)
    ).all()
    assert touched == []


def test_a_reused_token_from_another_invitee_goes_to_review(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    a = w.invitee()
    b = w.invitee()
    before = w.snapshot()[:2]
    inbound = w.say(a, "Ik moet mij helaas afmelden.", from_=b.person.email)
    assert inbound.status is R.REVIEW
    assert inbound.invitation_id == a.invitation_id
    assert w.snapshot()[:2] == before
    assert w.statuses(a, b) == [P.INVITED, P.INVITED]
    reason = review_reason(db, inbound)
    assert b.person.email in reason and a.person.email in reason


def test_supplied_tokens_are_compared_in_constant_time(
    db: Session, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final check of a token found by the indexed lookup is `tokens.same_token`, which
    is `hmac.compare_digest` (its timing does not depend on where two tokens differ)."""
    w = World(db, clock)
    p = w.invitee()
    calls: list[tuple[str, str]] = []
    digests: list[tuple[bytes, bytes]] = []
    real_same_token = tokens.same_token
    real_compare = tokens.hmac.compare_digest

    def recording_same_token(a: str, b: str) -> bool:
        calls.append((a, b))
        return real_same_token(a, b)

    def recording_compare(a: bytes, b: bytes) -> bool:
        digests.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(tokens, "same_token", recording_same_token)
    monkeypatch.setattr(tokens.hmac, "compare_digest", recording_compare)
    supplied = w.token(p).upper()  # mail systems may change the case
    raw = reply(to_token=None, from_=p.person.email, text="Ja, ik kom.")
    raw = raw.replace(b"To: " + REPLY_ADDRESS.encode(), f"To: aanmelden+{supplied}@x".encode())
    inbound = deliver(db, raw)
    assert inbound.status is R.PROCESSED
    assert (supplied.lower(), w.token(p)) in [(a.lower(), b) for a, b in calls]
    assert any(b == w.token(p).encode() for _, b in digests)
    assert real_same_token(w.token(p).upper(), w.token(p))
    assert not real_same_token(w.token(p)[:-1] + "a", w.token(p)[:-1] + "b")


def test_a_secretary_at_an_allowed_domain_acts_and_the_audit_names_them(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, allowed_sender_domains=("zwaanshoek.example",))
    p = w.invitee(domain="zwaanshoek.example")
    inbound = w.say(p, "Ja, wethouder komt graag.", from_="secretariaat@zwaanshoek.example")
    assert inbound.status is R.PROCESSED
    assert w.status(p) is P.REGISTERED
    [move] = [a for a in participant_audits(db, p) if a.inbound_message_id == inbound.id]
    assert move.actor == f"secretariaat@zwaanshoek.example for {p.person.email}"
    assert (
        "secretariaat@zwaanshoek.example"
        in db.scalars(
            select(AuditEntry.reason).where(
                AuditEntry.machine == "inbound", AuditEntry.entity_id == inbound.id
            )
        ).all()[-1]
    )


def test_a_colleague_at_a_domain_not_allowed_goes_to_review(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock, allowed_sender_domains=("anders.example",))
    p = w.invitee(domain="zwaanshoek.example")
    inbound = w.say(p, "Ja, wethouder komt graag.", from_="secretariaat@zwaanshoek.example")
    assert inbound.status is R.REVIEW
    assert w.status(p) is P.INVITED
    assert "not a trusted sender domain" in review_reason(db, inbound)


# =========================================================================== 3. no loops


AUTOMATIC = [
    ({"Auto-Submitted": "auto-generated"}, None),
    ({"Auto-Submitted": "auto-replied"}, None),
    ({"X-Autoreply": "yes"}, None),
    ({"Precedence": "bulk"}, None),
    ({"Precedence": "list"}, None),
    ({"Precedence": "junk"}, None),
    ({"List-Id": "Wethouders <wethouders.lists.example>"}, None),
    ({}, "mailer-daemon@gemeente1.example"),
    ({}, "postmaster@gemeente1.example"),
    ({}, "no-reply@gemeente1.example"),
    ({}, "noreply@gemeente1.example"),
]


@pytest.mark.parametrize(("headers", "sender"), AUTOMATIC)
@pytest.mark.parametrize(
    "text", ["Ja, ik kom graag.", "Wat is het adres van de locatie?", "Ik wil me uitschrijven."]
)
def test_automatic_mail_is_never_answered(
    db: Session, clock: ManualClock, headers: dict[str, str], sender: str | None, text: str
) -> None:
    w = World(db, clock)
    p = w.invitee()
    sender = sender or p.person.email
    inbound = deliver(
        db, reply(to_token=w.token(p), from_=sender, text=text, extra_headers=headers)
    )
    assert inbound.status is R.PROCESSED
    assert (inbound.classification or {}).get("is_automatic") is True
    assert w.mails(to=sender) == []
    assert w.mails(to=p.person.email) == []
    assert w.status(p) is P.INVITED


def robot_reply(out: OutboundMessage, robot: str, token: str, n: int) -> bytes:
    """A mail robot's answer to `out`: fresh, human-looking, no automatic-mail headers."""
    msg = EmailMessage()
    msg["From"] = robot
    msg["To"] = tokens.plus_address(REPLY_ADDRESS, token)
    msg["Subject"] = f"Re: ticket {n}"
    msg["Message-ID"] = make_msgid(f"robot{n}", "gemeente1.example")
    msg["In-Reply-To"] = out.message_id
    msg["References"] = out.message_id
    msg["Date"] = format_datetime(datetime(2023, 1, 10, tzinfo=UTC))
    msg.set_content(f"Bedankt voor uw bericht. Kunt u mij vertellen wat het adres is? ({n})\n")
    return msg.as_bytes()


def play_robot(
    db: Session, w: World, robot: Participant, answered: set[int], *, rounds: int, first: int
) -> int:
    """Let the robot answer every mail we sent it that it has not answered yet, round after
    round, until we send nothing new; returns how many it answered."""
    address, token = robot.person.email, w.token(robot)
    n = first
    for _ in range(rounds):
        ours = [m for m in w.mails(to=address) if m.id not in answered]
        if not ours:
            break
        for out in ours:
            answered.add(out.id)
            n += 1
            assert deliver(db, robot_reply(out, address, token, n)).status is R.PROCESSED
    return n - first


def loop_notices(w: World) -> list[OutboundMessage]:
    return [
        m
        for m in w.mails(kind=MailKind.ORGANISER_NOTICE.value)
        if m.idempotency_key.startswith("loop-brake:")
    ]


def test_two_robots_answering_each_other_stop_at_the_cap(db: Session, clock: ManualClock) -> None:
    w = World(db, clock)
    robot = w.invitee()
    address = robot.person.email
    cap = event_config(w.event).max_answers_per_sender_per_day
    # The robot starts it: one question, answered by our acknowledgement, answered by it...
    first = deliver(db, robot_reply_first(w, robot))
    assert first.status is R.PROCESSED
    seen: set[int] = set()
    answered = play_robot(db, w, robot, seen, rounds=5 * cap, first=1)
    acks = w.mails(kind=MailKind.QUESTION_ACK.value, to=address)
    assert len(acks) == cap
    assert answered == cap  # the robot answered each of our answers, and then had none
    assert len(loop_notices(w)) == 1
    notice = loop_notices(w)[0]
    assert notice.recipient == w.event.contact_email
    assert address in (notice.raw or b"").decode("utf-8", "replace")
    # More mail from the robot the same day is still read, but never answered.
    for n in range(3):
        out = acks[-1]
        assert deliver(db, robot_reply(out, address, w.token(robot), 100 + n)).status is R.PROCESSED
    assert len(w.mails(kind=MailKind.QUESTION_ACK.value, to=address)) == cap
    assert len(loop_notices(w)) == 1
    # Its questions still reach the organiser: a human sees them, whatever the robot does.
    assert len(w.mails(kind=MailKind.QUESTION_FORWARDED.value)) == cap + 1 + 3
    # The next day answers resume, and the brake holds again at the same cap.
    w.clock.advance(days=1)
    deliver(db, robot_reply(acks[-1], address, w.token(robot), 200))
    assert len(w.mails(kind=MailKind.QUESTION_ACK.value, to=address)) == cap + 1
    play_robot(db, w, robot, seen, rounds=5 * cap, first=300)
    assert len(w.mails(kind=MailKind.QUESTION_ACK.value, to=address)) == 2 * cap
    assert len(loop_notices(w)) == 2
    counts = db.scalars(select(AutoAnswerCount.count).where(AutoAnswerCount.sender == address))
    assert sorted(counts) == [cap, cap]


def robot_reply_first(w: World, robot: Participant) -> bytes:
    return reply(
        to_token=w.token(robot), from_=robot.person.email, text="Wat is het adres van de locatie?"
    )


def test_all_our_mail_says_it_is_automatic(db: Session, clock: ManualClock) -> None:
    """RFC 3834: whatever we send carries Auto-Submitted, so well-behaved robots stay quiet."""
    w = World(db, clock)
    a, b, c = w.invitee(), w.invitee(), w.invitee()
    queue_invitations(db, w.event)
    db.commit()
    w.say(a, "Ja, ik kom graag.")
    w.say(b, "Wat is het adres van de locatie?")
    w.say(c, "Ik kan helaas niet.")
    rows = w.mails()
    assert {m.kind for m in rows} >= {"invitation", "registration_confirmed", "question_ack"}
    for row in rows:
        msg = email.message_from_bytes(row.raw or b"", policy=email.policy.default)
        expected = "auto-replied" if msg["In-Reply-To"] else "auto-generated"
        assert msg["Auto-Submitted"] == expected, row.kind


# =========================================================================== 4. unsubscribe


def mark_sent(db: Session, p: Participant) -> None:
    assert p.invitation is not None
    if p.invitation.status is InvitationStatus.PENDING:
        transition(db, p.invitation, InvitationStatus.QUEUED, reason="test: queued")
    transition(db, p.invitation, InvitationStatus.SENT, reason="test: sent")
    p.invitation.sent_at = p.invitation.created_at
    db.commit()


def list_unsubscribe_mail(invitation_raw: bytes, sender: str) -> bytes:
    """What a mail client sends for the List-Unsubscribe mailto of one of our mails (RFC 2369):
    to the address in the URI, with its subject and body."""
    msg = email.message_from_bytes(invitation_raw, policy=email.policy.default)
    header = str(msg["List-Unsubscribe"])
    mailto = next(part.strip(" <>") for part in header.split(",") if "mailto:" in part)
    uri = urllib.parse.urlsplit(mailto)
    query = urllib.parse.parse_qs(uri.query)
    out = EmailMessage()
    out["From"] = sender
    out["To"] = urllib.parse.unquote(uri.path)
    out["Subject"] = query["subject"][0]
    out["Message-ID"] = make_msgid("unsub", sender.partition("@")[2])
    out["Date"] = format_datetime(datetime(2023, 1, 22, 9, 30, tzinfo=UTC))
    out.set_content(query["body"][0] + "\n")
    return out.as_bytes()


def unsubscriptions(db: Session, p: Participant) -> list[Unsubscription]:
    return list(db.scalars(select(Unsubscription).where(Unsubscription.person_id == p.person_id)))


@pytest.mark.parametrize(
    "text",
    [
        "Graag afmelden voor deze mailings.",
        "Ik wil me uitschrijven.",
        "uitschrijven",
        "Please unsubscribe me.",
        "unsubscribe",
    ],
)
def test_an_unsubscribe_reply_is_recorded_for_the_organiser(
    db: Session, clock: ManualClock, text: str
) -> None:
    w = World(db, clock)
    p = w.invitee()
    inbound = w.say(p, text)
    assert inbound.status is R.PROCESSED
    [row] = unsubscriptions(db, p)
    assert (row.organiser, row.inbound_message_id) == (w.event.organiser, inbound.id)
    assert w.status(p) is P.INVITED  # unsubscribing is not declining
    assert w.kinds_to(p) == [MailKind.UNSUBSCRIBE_ACK.value]
    w.say(p, text + " ")  # again: still one row
    assert len(unsubscriptions(db, p)) == 1


def test_a_message_both_unsubscribing_and_cancelling_goes_to_review(
    db: Session, clock: ManualClock
) -> None:
    w = World(db, clock)
    p = w.invitee()
    w.say(p, "Ja, ik kom graag.")
    before = w.snapshot()[:2]
    inbound = w.say(p, "Ik meld me af, en graag uitschrijven voor deze mailings.")
    assert inbound.status is R.REVIEW
    assert w.snapshot()[:2] == before
    assert unsubscriptions(db, p) == []
    assert "afmelden" in review_reason(db, inbound)


def test_unsubscribing_is_honoured_by_every_job_but_registering_still_works(
    db: Session, sessions: sessionmaker[Session], clock: ManualClock
) -> None:
    w = World(db, clock, nudge_days_before_deadline=3)
    quiet = w.invitee("Via antwoord")  # unsubscribes by replying
    later = w.invitee("Via kopregel")  # unsubscribes with the List-Unsubscribe mailto, later
    control = w.invitee("Controle")  # never unsubscribes: shows every job does send
    queue_invitations(db, w.event)
    db.commit()
    invitation_raw = {m.person_id: m.raw for m in w.mails(kind=MailKind.INVITATION.value)}
    for p in (quiet, later, control):
        mark_sent(db, p)

    w.say(quiet, "Graag afmelden voor deze mailings.")
    assert [u.source for u in unsubscriptions(db, quiet)] == ["reply"]

    # The nudge moment (3 days before the deadline, 09:00 local): `later` is still subscribed.
    clock.set(datetime(2023, 1, 22, 8, 0, tzinfo=UTC))
    assert queue_unanswered_nudges(db, w.event) == 2
    db.commit()
    nudged = {m.recipient for m in w.mails(kind=MailKind.NUDGE_UNANSWERED.value)}
    assert nudged == {later.person.email, control.person.email}

    # `later` unsubscribes before the outbox job runs: its pending nudge must not go out.
    raw = list_unsubscribe_mail(invitation_raw[later.person_id] or b"", later.person.email)
    assert deliver(db, raw).status is R.PROCESSED
    assert len(unsubscriptions(db, later)) == 1
    db.commit()  # the outbox job runs in a session of its own
    claimed = claim_due(sessions, "sender", 100)
    db.expire_all()
    by_recipient = {(m.kind, m.recipient): m for m in w.mails()}
    later_nudge = by_recipient[(MailKind.NUDGE_UNANSWERED.value, later.person.email)]
    assert later_nudge.status is OutboundStatus.SUPPRESSED
    assert by_recipient[(MailKind.NUDGE_UNANSWERED.value, control.person.email)].status is (
        OutboundStatus.SENDING
    )
    claimed_kinds = {(c.kind, c.recipient) for c in claimed}
    assert (MailKind.UNSUBSCRIBE_ACK.value, later.person.email) in claimed_kinds  # essential

    # An unsubscribed person can still register, and gets the (essential) confirmation.
    clock.set(datetime(2023, 1, 23, 10, 0, tzinfo=UTC))
    for p in (quiet, later, control):
        assert w.say(p, "Ja, ik kom graag.").status is R.PROCESSED
    assert w.statuses(quiet, later, control) == [P.REGISTERED] * 3
    db.commit()
    claim_due(sessions, "sender", 100)
    db.expire_all()
    for p in (quiet, later):
        [confirmation] = w.mails(kind=MailKind.REGISTRATION_CONFIRMED.value, to=p.person.email)
        assert confirmation.status is OutboundStatus.SENDING

    # Reminders (the 1-day one) and follow-ups go to the control person only.
    clock.set(datetime(2023, 1, 31, 9, 0, tzinfo=UTC))
    assert queue_due_reminders(db, w.event) == 1
    clock.set(datetime(2023, 2, 2, 12, 0, tzinfo=UTC))
    assert queue_followups(db, w.event) == 1
    db.commit()
    for kind in (MailKind.REMINDER, MailKind.FOLLOWUP_ATTENDED, MailKind.NUDGE_UNANSWERED):
        sendable = w.mails(kind=kind.value)
        sendable = [m for m in sendable if m.status is not OutboundStatus.SUPPRESSED]
        assert {m.recipient for m in sendable} == {control.person.email}, kind

    # No new invitation from the same organiser; another organiser may still invite them.
    same = new_event(db, "tweede-ronde", organiser=w.event.organiser)
    other = new_event(db, "ander-congres", organiser="Een andere organisator")
    for event in (same, other):
        for p in (quiet, later, control):
            add_invitation(db, event, p.person, batch="b", reason="test")
    db.commit()
    assert {m.recipient for m in queue_invitations(db, same)} == {control.person.email}
    assert len(queue_invitations(db, other)) == 3
    db.commit()


def new_event(db: Session, slug: str, *, organiser: str) -> Event:
    base = example_config()
    cfg = dataclasses.replace(
        base,
        slug=slug,
        organiser=organiser,
        starts_at=base.starts_at + timedelta(days=60),
        ends_at=base.ends_at + timedelta(days=60),
        registration_deadline=base.registration_deadline + timedelta(days=60),
    )
    event, _ = apply_event_config(db, cfg)
    db.flush()
    return event
