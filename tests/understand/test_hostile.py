"""Huge hostile input is read with bounded work: asserted on the work handed to each costly
step (lines given to quotequail, encoded bytes decoded, regex scans avoided), not on seconds."""

from __future__ import annotations

import base64
import email
import email.policy
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.understand._common import sessions
from workflows.understand import bounce, mime, strip, understand
from workflows.understanding import ReplyKind


def _message(body: bytes, *, cte: str = "8bit", subject: str = "Re: Uitnodiging") -> bytes:
    head = (
        "From: Jan <jan@gemeente.example>\r\nTo: aanmelden@wijkwijzer.example\r\n"
        f"Subject: {subject}\r\nMessage-ID: <h@x>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    )
    return head.encode() + body


def test_a_5000_line_message_hands_quotequail_at_most_its_first_lines() -> None:
    text = "Ja, ik kom graag.\n" + "een regel tekst zonder citaat\n" * 5000
    head = strip.quotequail_input(text)
    assert head.count("\n") < strip.QUOTEQUAIL_MAX_LINES
    assert text.startswith(head)
    u = understand(_message(text.encode()), sessions())
    assert u.kind is ReplyKind.ACCEPT


def test_quotequail_still_finds_a_quote_near_the_top() -> None:
    text = "Ja graag\n\nAm 11.01.2023 um 10:00 schrieb X <x@y.de>:\nUitnodiging\n" * 1
    assert strip.strip_reply(text) == "Ja graag"


def test_a_one_megabyte_line_is_read() -> None:
    u = understand(_message(b"Ja, ik kom " + b"x" * 1_000_000), sessions())
    assert u.kind in (ReplyKind.ACCEPT, ReplyKind.UNCLEAR)
    assert len(u.reply_text or "") <= 20_000


def test_a_long_run_of_letters_without_an_at_sign_is_not_scanned_for_addresses() -> None:
    run = "a" * 20_000
    assert bounce.addresses_in(run) == []
    found = bounce.addresses_in(f"{run} could not deliver to jan@gemeente.example.")
    assert found == ["jan@gemeente.example"]
    raw = (
        b"From: MAILER-DAEMON@mx.example\r\nTo: aanmelden@wijkwijzer.example\r\n"
        b"Subject: Undeliverable\r\n\r\ncould not be delivered " + run.encode() * 3 + b"\r\n"
    )
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.BOUNCE and u.bounced_recipients == ()


def test_a_huge_base64_part_decodes_only_what_the_text_limit_needs() -> None:
    payload = base64.encodebytes(b"Ja, ik kom graag.\n" * 400_000).decode()  # ~9.7 MB
    prefix = mime.encoded_prefix(payload, "base64")
    assert len(prefix) <= (mime.MAX_TEXT_BYTES // 3 + 1) * 4
    part = email.message_from_string(
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n" + payload,
        policy=email.policy.compat32,
    )
    text = mime.part_text(part)
    assert len(text) == mime.MAX_TEXT_CHARS
    assert text.startswith("Ja, ik kom graag.\nJa, ik kom graag.")


def test_quoted_printable_is_cut_at_a_line_end_before_decoding() -> None:
    payload = "caf=C3=A9 ja=\n" * 400_000
    prefix = mime.encoded_prefix(payload, "quoted-printable")
    assert len(prefix) <= mime.MAX_TEXT_BYTES * 3 + 3 and prefix.endswith("\n")
    part = email.message_from_string(
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        + payload,
        policy=email.policy.compat32,
    )
    assert mime.part_text(part).startswith("café jacafé ja")


def test_deep_nesting_is_refused_before_the_parser_walks_it() -> None:
    levels = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(300)
    )
    raw = b"From: a@gemeente.example\r\nSubject: x\r\n" + levels + b"ja\r\n"
    assert mime.too_many_boundaries(raw)
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR and "MIME boundaries" in u.notes[0]


def test_a_header_with_a_long_run_of_spaces_unfolds_like_before() -> None:
    assert mime.decode_header_value("a" + " " * 50_000 + "b\r\n  c") == "a" + " " * 50_000 + "b c"
    raw = _message(b"Ja, ik kom.", subject="Re:" + " " * 50_000 + "ja")
    assert understand(raw, sessions()).kind is ReplyKind.ACCEPT


def test_flufl_detector_tracebacks_are_demoted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("flufl.bounce").exception("Exception in detector: %s", "X")
    logging.getLogger("flufl.bounce").error("something else")
    messages = [r.getMessage() for r in caplog.records if r.name == "flufl.bounce"]
    assert messages == ["something else"]


@settings(max_examples=10, deadline=None)
@given(
    st.sampled_from(["a", " ", "\n", "@", ">", "-", ":", "é", ".", "Op 1 jan schreef x@y.nl:"]),
    st.integers(min_value=1_000, max_value=8_000),
)
def test_long_repetitions_are_understood_without_raising(piece: str, times: int) -> None:
    text = ("Ja, ik kom.\n" + piece * times)[:200_000]
    u = understand(_message(text.encode()), sessions())
    assert u.kind in ReplyKind
    assert strip.quotequail_input(text).count("\n") < strip.QUOTEQUAIL_MAX_LINES


def test_boundaries_are_counted_in_any_letter_case() -> None:
    many = b"Content-Type: multipart/mixed; BoUnDaRy = x\r\n" * (mime.MAX_BOUNDARIES + 1)
    assert mime.too_many_boundaries(many)
    assert not mime.too_many_boundaries(many[: len(many) // 2])
