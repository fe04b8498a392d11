"""Forwards sent as an attachment (a message/rfc822 part), and the reports that are not.

The fixture set (make_replies.py: fwa-*) covers whole messages from each client; these tests
pin the parts: what is found as an attached message and what is not (bounces, ARF and Hotmail
complaints keep being read as before), which subject counts as the attached one, and what the
reviewer gets to see.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from tests.understand._common import REPLIES, sessions
from workflows.understand import attached, mime, understand
from workflows.understand.pipeline import FORWARD_BELOW_MARKER, FORWARD_MARKER
from workflows.understanding import ReplyKind

OUR_ADDRESS = "aanmelden+abcdefghijklmnopqrstuvwxyz234567@wijkwijzer.example"
WETHOUDER_ANSWER = "Ja, ik ga graag. Zet me maar op de deelsessie wonen."


def _wethouder_mail(subject: str = "RE: Uitnodiging", text: str = WETHOUDER_ANSWER) -> EmailMessage:
    inner = EmailMessage()
    inner["From"] = "Jan Jansen <jan.jansen@zaanstad.nl>"
    inner["To"] = "Secretariaat <secretariaat@zaanstad.nl>"
    inner["Subject"] = subject
    inner["Date"] = "Tue, 10 Jan 2023 16:40:00 +0100"
    inner.set_content(text)
    return inner


def _forward_as_attachment(
    subject: str,
    own: str | None,
    inner: EmailMessage,
    *,
    sender: str = "petra.visser@zaanstad.nl",
) -> EmailMessage:
    """A message with `own` as its text part (None: no text part at all) and `inner` attached."""
    msg = EmailMessage()
    msg["From"] = f"Petra Visser <{sender}>"
    msg["To"] = OUR_ADDRESS
    msg["Subject"] = subject
    msg["Message-ID"] = "<fwa-test@zaanstad.nl>"
    if own is not None:
        msg.set_content(own)
    else:
        msg["MIME-Version"] = "1.0"
        msg.make_mixed()
    msg.add_attachment(inner, filename="RE Uitnodiging.eml")
    return msg


def _read(msg: EmailMessage) -> tuple[ReplyKind, str]:
    u = understand(msg.as_bytes(), sessions())
    return u.kind, u.reply_text


# --- what counts as an attached message -------------------------------------------------------


def test_the_attached_message_is_described_with_its_html_as_text() -> None:
    msg = mime.parse((REPLIES / "fwa-thunderbird-html-antwoord.eml").read_bytes())
    (found,) = attached.attached_messages(msg)
    assert found.sender == "Jan Jansen <jan.jansen@zaanstad.nl>"
    assert found.date == "Tue, 10 Jan 2023 16:40:00 +0100"
    assert found.subject.startswith("RE: Uitnodiging")
    assert found.text.startswith("Ja, ik kom graag, deelsessie werk.")
    assert "MsoNormal" not in found.text and "&nbsp;" not in found.text


@pytest.mark.parametrize(
    "name", ["bounce-dsn-511.eml", "bounce-dsn-delayed.eml", "bounce-dsn-headers-only.eml"]
)
def test_a_delivery_report_returns_our_mail_but_forwards_nothing(name: str) -> None:
    raw = (REPLIES / name).read_bytes()
    msg = mime.parse(raw)
    returned = {mime.content_type(p) for p, _, _ in mime.walk(msg)}
    assert returned & {"message/rfc822", "text/rfc822-headers"}  # the original is there …
    assert attached.attached_messages(msg) == ()  # … and is not taken for a forward
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.BOUNCE
    assert attached.ATTACHED_MESSAGE_LINE not in u.reply_text


def _arf_report() -> bytes:
    """An RFC 5965 abuse report: a human part, the machine part, and the reported mail."""
    reported = _wethouder_mail().as_string()
    return (
        "From: abuse@provider.example\n"
        f"To: {OUR_ADDRESS}\n"
        "Subject: Abuse report\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="arf"\n\n'
        "--arf\nContent-Type: text/plain\n\nThis is an email abuse report.\n"
        "--arf\nContent-Type: message/feedback-report\n\n"
        "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\n"
        f"--arf\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n{reported}\n"
        "--arf--\n"
    ).encode()


def test_an_abuse_report_is_read_as_before() -> None:
    report = _arf_report()
    assert attached.attached_messages(mime.parse(report)) == ()
    u = understand(report, sessions())
    assert u.kind is ReplyKind.UNCLEAR and u.is_automatic
    assert any("ARF" in note for note in u.notes)
    assert u.reply_text == ""


def test_a_hotmail_complaint_is_no_forward() -> None:
    """Hotmail's complaint loop sends the reported mail alone in a multipart/mixed."""
    inner = _wethouder_mail(subject="Nieuwsbrief")
    inner["X-HmXmrOriginalRecipient"] = "someone@hotmail.com"
    complaint = _forward_as_attachment(
        "complaint about message from 192.0.2.222", None, inner, sender="staff@hotmail.com"
    )
    assert attached.attached_messages(mime.parse(complaint.as_bytes())) == ()
    assert _read(complaint) == (ReplyKind.UNCLEAR, "")


# --- which subject is the attached message's --------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "attached_subject", "repeats"),
    [
        ("FW: RE: Uitnodiging", "RE: Uitnodiging", True),  # Outlook
        ("Fwd: Ja, ik kom graag", "Ja, ik kom graag", True),  # Apple Mail
        ("[Fwd: Ja, ik kom graag]", "Ja, ik kom graag", True),  # old Thunderbird
        ("ja,  IK kom graag", "Ja, ik kom graag", True),  # a dragged-in .eml, subject kept
        ("Ja, ik kom graag", "Overleg wijkteams", False),  # the sender's own subject
        ("Ja, ik kom graag", "", False),
        ("", "Ja, ik kom graag", False),
    ],
)
def test_repeats_attached_subject(subject: str, attached_subject: str, repeats: bool) -> None:
    found = attached.AttachedMessage(sender="", date="", subject=attached_subject, text="")
    assert attached.repeats_attached_subject(subject, (found,)) is repeats


def test_the_attached_subject_is_never_read_as_the_answer() -> None:
    inner = _wethouder_mail(subject="Ja, ik kom graag")
    kind, text = _read(_forward_as_attachment("Ja, ik kom graag", "Zie bijlage.", inner))
    assert kind is ReplyKind.UNCLEAR
    assert text.startswith(f"Zie bijlage.\n\n{FORWARD_BELOW_MARKER}\n\n")


def test_the_senders_own_subject_beside_an_attachment_is_read() -> None:
    inner = _wethouder_mail(subject="Overleg wijkteams", text="Helaas kan ik niet.")
    kind, _ = _read(_forward_as_attachment("Ja, ik kom graag", "Zie onderwerp.", inner))
    assert kind is ReplyKind.ACCEPT


# --- what the sender wrote, and what the reviewer sees ----------------------------------------


def test_the_senders_words_are_the_answer_never_the_attached_ones() -> None:
    own = "Nee, helaas, ik kan niet."
    u = understand(
        _forward_as_attachment("FW: RE: Uitnodiging", own, _wethouder_mail()).as_bytes(),
        sessions(),
    )
    assert u.kind is ReplyKind.DECLINE  # the attached "Ja, ik ga graag" does not count
    assert u.session is None
    assert u.reply_text == own


@pytest.mark.parametrize("own", [None, "", "\n\n-- \nPetra Visser\nSecretariaat"])
def test_nothing_of_the_senders_own_shows_the_attached_message(own: str | None) -> None:
    kind, text = _read(_forward_as_attachment("FW: RE: Uitnodiging", own, _wethouder_mail()))
    assert kind is ReplyKind.UNCLEAR
    head = f"{FORWARD_MARKER}\n\n{attached.ATTACHED_MESSAGE_LINE}\n"
    assert text.startswith(head)
    assert "From: Jan Jansen <jan.jansen@zaanstad.nl>\n" in text
    assert "Subject: RE: Uitnodiging\n" in text
    assert text.endswith(WETHOUDER_ANSWER)


@pytest.mark.parametrize("own", ["Zie bijlage.", "See attached.", "Ter info"])
def test_words_that_point_at_the_attachment_show_it(own: str) -> None:
    kind, text = _read(_forward_as_attachment("FW: RE: Uitnodiging", own, _wethouder_mail()))
    assert kind is ReplyKind.UNCLEAR
    mine, marker, shown = text.partition(f"\n\n{FORWARD_BELOW_MARKER}\n\n")
    assert (mine, marker) == (own, f"\n\n{FORWARD_BELOW_MARKER}\n\n")
    assert shown.startswith(attached.ATTACHED_MESSAGE_LINE) and shown.endswith(WETHOUDER_ANSWER)


def test_a_forward_in_the_body_and_an_attached_one_are_both_shown() -> None:
    body = "\n\n---------- Forwarded message ---------\nFrom: Karin\n\nIk kom ook."
    kind, text = _read(_forward_as_attachment("Fwd: Uitnodiging", body, _wethouder_mail()))
    assert kind is ReplyKind.UNCLEAR and text.startswith(FORWARD_MARKER)
    inline_at = text.index("---------- Forwarded message")
    assert inline_at < text.index(attached.ATTACHED_MESSAGE_LINE)


def test_an_attached_out_of_office_is_not_the_senders_auto_reply() -> None:
    inner = _wethouder_mail(subject="Automatisch antwoord: Uitnodiging",
                            text="Ik ben afwezig tot en met 20 januari.")  # fmt: skip
    msg = _forward_as_attachment("FW: Automatisch antwoord: Uitnodiging", "Zie bijlage.", inner)
    kind, text = _read(msg)
    assert kind is ReplyKind.UNCLEAR
    assert FORWARD_BELOW_MARKER in text


def test_an_automatic_sender_forwarding_as_attachment_stays_automatic() -> None:
    msg = _forward_as_attachment("FW: RE: Uitnodiging", "", _wethouder_mail(),
                                 sender="noreply@zaanstad.nl")  # fmt: skip
    u = understand(msg.as_bytes(), sessions())
    assert u.kind is ReplyKind.AUTO_REPLY and u.is_automatic
    assert FORWARD_MARKER not in u.reply_text


def test_an_empty_attached_message_is_shown_as_what_it_is() -> None:
    msg = _forward_as_attachment("FW: iets", "", EmailMessage())
    kind, text = _read(msg)
    assert kind is ReplyKind.UNCLEAR
    assert text == f"{FORWARD_MARKER}\n\n{attached.ATTACHED_MESSAGE_LINE}"
