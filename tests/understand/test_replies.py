"""The fixture replies (tests/understand/replies/*.eml) against their expected.json sidecar.

The .eml files are produced by make_replies.py; every case quotes the real invitation (with
"aanmelden", "deelsessie", "ja/nee", every session and the rsvp marker), so a passing case
also proves that quoted text does not leak into the reading.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from tests.understand import make_replies
from tests.understand._common import REPLIES, sessions
from workflows.understand import understand
from workflows.understand.attached import ATTACHED_MESSAGE_LINE
from workflows.understand.pipeline import FORWARD_BELOW_MARKER, FORWARD_MARKER
from workflows.understanding import Understanding

EXPECTED: dict[str, dict[str, Any]] = json.loads((REPLIES / "expected.json").read_text("utf-8"))
HUMAN_KINDS = {"accept", "decline", "tentative", "question", "unclear"}


@cache
def _understood(name: str) -> Understanding:
    return understand((REPLIES / name).read_bytes(), sessions())


def _person(p: Any) -> dict[str, Any] | None:
    return None if p is None else {"name": p.name, "email": p.email, "session": p.session}


def _actual(u: Understanding, expected: dict[str, Any]) -> dict[str, Any]:
    got: dict[str, Any] = {
        "kind": u.kind.value,
        "token": u.token,
        "session": u.session,
        "companions": [_person(c) for c in u.companions],
        "substitute": _person(u.substitute),
        "dietary": u.dietary,
        "has_question": u.has_question,
        "mentions_cancellation": u.mentions_cancellation,
        "wants_unsubscribe": u.wants_unsubscribe,
        "language": u.language,
        "bounce_permanent": u.bounce_permanent,
        "bounced_recipients": list(u.bounced_recipients),
        "is_automatic": u.is_automatic,
        "forwarded_only": u.reply_text.startswith(FORWARD_MARKER),
        "forward_shown": FORWARD_BELOW_MARKER in u.reply_text,
        "attached_shown": ATTACHED_MESSAGE_LINE in u.reply_text,
    }
    return {k: v for k, v in got.items() if k in expected}


def test_enough_fixtures() -> None:
    assert len(EXPECTED) >= 120
    assert {e["kind"] for e in EXPECTED.values()} == HUMAN_KINDS | {"auto_reply", "bounce"}


def test_fixtures_match_generator() -> None:
    """The files on disk are exactly what make_replies.py renders (no hand edits drift)."""
    built = make_replies.build()
    assert sorted(built) == sorted(p.name for p in REPLIES.glob("*.eml"))
    for name, item in built.items():
        assert (REPLIES / name).read_bytes() == item["raw"], name
        assert EXPECTED[name] == item["expected"], name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reply(name: str) -> None:
    expected = {k: v for k, v in EXPECTED[name].items() if k != "client"}
    u = _understood(name)
    assert _actual(u, expected) == expected, u.notes


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e["kind"] in HUMAN_KINDS))
def test_quoted_invitation_never_read(name: str) -> None:
    u = _understood(name)
    if EXPECTED[name].get("forwarded_only"):
        # A forward with nothing of the sender's own keeps the forwarded mail (often our own
        # invitation) in reply_text on purpose, for the reviewer; it is never read.
        assert u.kind.value == "unclear" and u.reply_text.startswith(FORWARD_MARKER), u.notes
        return
    # Below FORWARD_BELOW_MARKER is the forwarded mail, shown to the reviewer, never read;
    # the sender's own words above it must be free of quoted text like any reply.
    text = u.reply_text.partition(FORWARD_BELOW_MARKER)[0].lower()
    for leak in (
        "rsvp:",
        "geachte wethouder",
        "dear alderman",
        "verzonden:",
        "onderwerp:",
        "oorspronkelijk bericht",
        "original message",
        "met vriendelijke groet",
        "kind regards",
        "dit bericht kan informatie bevatten",
        "verstuurd vanaf",
    ):
        assert leak not in text, (leak, u.reply_text)


def test_envelope_of_a_reply() -> None:
    name = "ja-kort.eml"
    u = understand((REPLIES / name).read_bytes(), sessions())
    token = EXPECTED[name]["token"]
    assert u.message_id == "<ja-kort@mail.zwolle.nl>"
    assert u.sender == "jan.jansen@zwolle.nl"
    assert u.references == (f"<invite-{token[:8]}@wijkwijzer.example>",)
    assert u.is_automatic is False


def test_calendar_envelope() -> None:
    name = "cal-outlook-accept.eml"
    u = understand((REPLIES / name).read_bytes(), sessions())
    token = EXPECTED[name]["token"]
    assert u.calendar_uid == f"{token}@rsvpmail"
    assert u.calendar_attendee == "lotte.smits@breda.nl"  # Outlook's upper case, lowered


def test_bounce_token_comes_from_the_returned_original() -> None:
    """The bounce is addressed to bounces@…; only the attached invitation carries the token."""
    for name in ("bounce-dsn-511.eml", "bounce-qmail.eml", "bounce-dsn-headers-only.eml"):
        u = understand((REPLIES / name).read_bytes(), sessions())
        assert u.token == EXPECTED[name]["token"], name
