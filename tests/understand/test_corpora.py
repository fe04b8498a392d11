"""Public corpora (../shared/corpora or $RSVPMAIL_CORPORA); skipped when absent.

- sisimai set-of-emails (BSD-2-Clause): 629 real bounces, RFC 3834 auto-replies and abuse
  reports. None may ever be read as an answer to the invitation.
- discourse email_reply_trimmer (MIT): 64 reply bodies and their trimmed form. Our stripper
  cuts sign-offs ("Best regards" and below) and forwarded mail, which that corpus keeps, so
  full agreement is not the goal; the floor below guards against regressions.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.understand._common import corpora_dir, sessions
from workflows.understand import strip_reply, understand
from workflows.understand.attached import ATTACHED_MESSAGE_LINE
from workflows.understand.pipeline import FORWARD_BELOW_MARKER

SISIMAI = corpora_dir() / "sisimai-set-of-emails" / "maildir" / "bsd"
SISIMAI_NOT_BOUNCES = corpora_dir() / "sisimai-set-of-emails" / "maildir" / "not"
TRIMMER = corpora_dir() / "email-reply-trimmer" / "test"
# Measured: 48 of 64 (75%) normalised-equal; the floor sits just under it.
TRIMMER_MIN_AGREEMENT = 0.73


def _need(path: Path) -> None:
    if not path.is_dir():
        pytest.skip(f"corpus not present: {path}")


@pytest.mark.slow
def test_sisimai_bounces_are_never_answers() -> None:
    _need(SISIMAI)
    kinds: Counter[str] = Counter()
    answers: list[str] = []
    rfc3834_not_auto: list[str] = []
    for path in sorted(SISIMAI.glob("*.eml")):
        u = understand(path.read_bytes(), sessions())  # must not raise
        kinds[u.kind.value] += 1
        if u.kind.value in ("accept", "decline", "tentative", "question"):
            answers.append(f"{path.name}: {u.kind.value} {u.notes}")
        if path.name.startswith("rfc3834-") and u.kind.value != "auto_reply":
            rfc3834_not_auto.append(path.name)
        assert u.is_automatic or u.kind.value == "unclear", path.name
        # A report's returned or reported original is never shown as a forward.
        assert ATTACHED_MESSAGE_LINE not in u.reply_text, path.name
    total = sum(kinds.values())
    print(f"\nsisimai: {total} messages: {dict(kinds)}")
    assert total >= 600
    assert answers == []
    assert rfc3834_not_auto == []
    assert kinds["bounce"] >= 0.93 * total  # measured 597/629 (595 before SES JSON notices)


# "bounceType":"Permanent" and the like, read straight from the raw file (escaped quotes too,
# in the SNS envelope) so the expectation does not come from the parser under test.
_SES_FIELD = r'\\?"{}\\?"\s*:\s*\\?"([^"\\]+)'


def _ses_field(raw: str, name: str) -> list[str]:
    # sendmail breaks long lines with "!", newline, space; undo that before looking.
    return re.findall(_SES_FIELD.format(name), raw.replace("!\n ", ""))


def test_sisimai_amazon_ses_json_notices() -> None:
    """SES notices sent as JSON through SNS: bounces with their recipients and type, and a
    complaint that is never an answer."""
    _need(SISIMAI)
    seen: Counter[str] = Counter()
    for path in sorted(SISIMAI.glob("lhost-amazonses-*.eml")):
        raw = path.read_text("utf-8", "replace").replace("\r\n", "\n")
        kinds = _ses_field(raw, "notificationType")
        if not kinds:
            continue  # an SES DSN, not a JSON notice
        u = understand(path.read_bytes(), sessions())
        seen[kinds[0]] += 1
        assert u.is_automatic, path.name
        if kinds[0] == "Bounce":
            assert u.kind.value == "bounce", (path.name, u.notes)
            assert u.bounce_permanent is (_ses_field(raw, "bounceType")[0] == "Permanent")
            assert u.bounced_recipients == tuple(
                dict.fromkeys(a.lower() for a in _ses_field(raw, "emailAddress"))
            ), path.name
        elif kinds[0] == "Complaint":
            assert u.kind.value == "unclear", (path.name, u.notes)
        else:
            assert u.kind.value == "auto_reply", (path.name, u.notes)
    print(f"\nsisimai SES JSON notices: {dict(seen)}")
    assert seen["Bounce"] >= 2 and seen["Complaint"] >= 1


def test_sisimai_forward_as_attachment_is_shown_not_read() -> None:
    """A person's "original as attachment" (no bounce): their words are read, the attached
    message is shown to the reviewer below them."""
    _need(SISIMAI_NOT_BOUNCES)
    path = SISIMAI_NOT_BOUNCES / "is-not-bounce-02.eml"
    raw = path.read_text("utf-8", "replace")
    assert "Content-Type: message/rfc822" in raw
    u = understand(path.read_bytes(), sessions())
    assert u.kind.value == "unclear" and not u.is_automatic
    own, _, shown = u.reply_text.partition(f"\n\n{FORWARD_BELOW_MARKER}\n\n")
    assert own and own in raw
    assert shown.startswith(ATTACHED_MESSAGE_LINE)
    subject = re.findall(r"^Subject: (.+)$", raw, re.MULTILINE)[-1].strip()
    assert f"Subject: {subject}" in shown  # the attached message's, not the outer one


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_reply_trimmer_agreement() -> None:
    _need(TRIMMER)
    names = sorted(p.name for p in (TRIMMER / "emails").glob("*.txt"))
    agree = [
        n
        for n in names
        if _norm(strip_reply((TRIMMER / "emails" / n).read_text("utf-8", "replace")))
        == _norm((TRIMMER / "trimmed" / n).read_text("utf-8", "replace"))
    ]
    rate = len(agree) / len(names)
    print(f"\nemail-reply-trimmer: {len(agree)}/{len(names)} = {rate:.0%} agree")
    assert len(names) >= 60
    assert rate >= TRIMMER_MIN_AGREEMENT


@pytest.mark.parametrize("name", ["embedded_email_dutch_1.txt", "embedded_email_dutch_2.txt"])
def test_reply_trimmer_dutch_exact(name: str) -> None:
    _need(TRIMMER)
    got = strip_reply((TRIMMER / "emails" / name).read_text("utf-8"))
    assert got == (TRIMMER / "trimmed" / name).read_text("utf-8").strip()
