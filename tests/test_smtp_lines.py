"""The bytes the sender puts on the wire: CRLF line ends and dot-stuffing (RFC 5321 4.5.2)."""

from __future__ import annotations

import smtplib

from hypothesis import given
from hypothesis import strategies as st

from jobs.smtp_sender import dot_stuffed, smtp_lines

# Mail-like bytes: short lines with the characters that matter here over-represented.
_chunks = st.sampled_from([b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.", b"x", b"=", b" "])
_mail = st.lists(st.one_of(_chunks, st.binary(max_size=8)), max_size=40).map(b"".join)


def _smtplib_data(data: bytes) -> bytes:
    """What smtplib.SMTP.data() puts before the final ".": the reference implementation."""
    quoted = smtplib._quote_periods(data)  # type: ignore[attr-defined]
    return quoted if quoted.endswith(b"\r\n") else quoted + b"\r\n"


@given(_mail)
def test_dot_stuffing_matches_smtplib_on_crlf_text(raw: bytes) -> None:
    wire = smtp_lines(raw)
    assert dot_stuffed(wire) == _smtplib_data(wire)


@given(_mail)
def test_every_line_ends_in_crlf(raw: bytes) -> None:
    wire = smtp_lines(raw)
    assert wire.count(b"\n") == wire.count(b"\r\n")
    assert wire.replace(b"\r\n", b"\n").replace(b"\r", b"") == raw.replace(b"\r", b"")
