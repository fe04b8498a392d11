"""Forwards with nothing of the sender's own, and Amazon SES JSON notices.

The fixture set (make_replies.py: fw-*, ses-*) covers whole messages from each client; these
tests pin the parts: where a forward starts, when a header block is a forward and when a
reply, what the reviewer gets to see, and how an SES notice is read (or refused).
"""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from tests.understand._common import REPLIES, sessions
from workflows.understand import ses, understand
from workflows.understand import subject as subject_line
from workflows.understand.pipeline import FORWARD_BELOW_MARKER, FORWARD_MARKER
from workflows.understand.strip import forwarded_part, strip_reply
from workflows.understand.text import read_text
from workflows.understanding import ReplyKind

OUTLOOK_BLOCK = (
    "________________________________\n"
    "Van: Jan Jansen <jan.jansen@zaanstad.nl>\n"
    "Verzonden: dinsdag 10 januari 2023 16:40\n"
    "Aan: Secretariaat <secretariaat@zaanstad.nl>\n"
    "Onderwerp: RE: Uitnodiging\n"
    "\n"
    "Ja, ik ga graag. Deelsessie wonen.\n"
)


def _mail(subject: str, body: str, *, sender: str = "petra.visser@zaanstad.nl") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Petra Visser <{sender}>"
    msg["To"] = "aanmelden+abcdefghijklmnopqrstuvwxyz234567@wijkwijzer.example"
    msg["Subject"] = subject
    msg["Message-ID"] = "<fw-test@zaanstad.nl>"
    msg.set_content(body)
    return msg.as_bytes()


# --- where a forward starts -------------------------------------------------------------------


@pytest.mark.parametrize(
    "opening",
    [
        "---------- Forwarded message ---------",
        "---------- Doorgestuurd bericht ---------",
        "-------- Doorgestuurd bericht --------",  # Thunderbird
        "-------- Forwarded Message --------",
        "-----Doorgestuurd bericht-----",  # older Outlook
        "Begin doorgestuurd bericht:",  # Apple Mail
        "Begin forwarded message:",
    ],
)
def test_an_explicit_forward_line_opens_a_forward_whatever_the_subject(opening: str) -> None:
    body = f"\n\n{opening}\nVan: Jan Jansen <jan@x.nl>\nOnderwerp: Uitnodiging\n\nJa, ik kom."
    assert strip_reply(body) == ""
    found = forwarded_part(body, forward_subject=False)
    assert found is not None
    assert found.startswith(opening.strip()) and found.endswith("Ja, ik kom.")


def test_a_header_block_is_a_forward_only_when_the_subject_says_so() -> None:
    """Outlook writes the same block above a reply's quote: with "RE:" it stays a reply."""
    assert forwarded_part(OUTLOOK_BLOCK, forward_subject=False) is None
    found = forwarded_part(OUTLOOK_BLOCK, forward_subject=True)
    assert found is not None and found.startswith("_____") and "Ja, ik ga graag" in found


def test_a_signature_above_the_forward_is_passed_over() -> None:
    body = "Verstuurd vanaf mijn iPhone\n\nBegin doorgestuurd bericht:\n\n> Van: Jan\n> Ja."
    assert (
        forwarded_part(body, forward_subject=True)
        == "Begin doorgestuurd bericht:\n\n> Van: Jan\n> Ja."
    )


@pytest.mark.parametrize(
    ("subject", "forward"),
    [
        ("FW: RE: Uitnodiging", True),
        ("Fwd: Ja, ik kom", True),
        ("Doorst: Uitnodiging", True),
        ("WG: Einladung", True),
        ("[Fwd: Ja, ik kom]", True),  # old Thunderbird brackets the forwarded subject
        ("RE: FW: Uitnodiging", False),  # a reply to a forwarded invitation
        ("Re: Uitnodiging", False),
        ("Fwiw ik kom", False),
    ],
)
def test_forward_subjects(subject: str, forward: bool) -> None:
    assert subject_line.is_forward(subject) is forward


# --- what a forward with nothing of the sender's own reads as ---------------------------------


def test_the_reviewer_sees_the_forwarded_answer_but_it_is_not_read() -> None:
    u = understand((REPLIES / "fw-outlook-antwoord-wethouder.eml").read_bytes(), sessions())
    assert u.kind is ReplyKind.UNCLEAR
    assert u.session is None and u.companions == () and not u.has_question
    assert u.reply_text.startswith(FORWARD_MARKER + "\n\n")
    assert "Van: Jan Jansen" in u.reply_text
    assert "Ja, ik ga graag. Zet me maar op de deelsessie wonen." in u.reply_text


def test_the_forwarded_subject_is_not_read_as_the_senders_answer() -> None:
    """Before, "FW: Ja, ik kom graag" above a forward with nothing typed read as accept."""
    raw = _mail("FW: Ja, ik kom graag", "\n\n" + OUTLOOK_BLOCK)
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR
    assert u.reply_text.startswith(FORWARD_MARKER)


def test_the_forwarded_subject_is_not_read_under_words_that_say_nothing() -> None:
    raw = _mail("FW: Ja, ik kom graag", "Zie hieronder.\n\n" + OUTLOOK_BLOCK)
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR and u.session is None
    assert u.reply_text.startswith(f"Zie hieronder.\n\n{FORWARD_BELOW_MARKER}\n\n")


# --- words that only point at the forward -----------------------------------------------------


def test_words_that_point_at_the_forward_show_it_to_the_reviewer_unread() -> None:
    raw = (REPLIES / "fw-outlook-en-see-below.eml").read_bytes()
    body = message_from_bytes(raw, policy=policy.default)
    assert isinstance(body, EmailMessage)
    own = strip_reply(body.get_content())
    u = understand(raw, sessions())
    own_reading = read_text(own, sessions())

    # The classification is that of the sender's own words alone …
    assert own_reading.says_nothing
    assert (u.kind, u.session, u.companions, u.has_question) == (
        own_reading.kind, own_reading.session, own_reading.companions, own_reading.has_question
    )  # fmt: skip
    assert u.kind is ReplyKind.UNCLEAR
    # … and the reviewer gets those words, the marker, then the whole forward.
    head, marker, forwarded = u.reply_text.partition(f"\n\n{FORWARD_BELOW_MARKER}\n\n")
    assert (head, marker) == (own, f"\n\n{FORWARD_BELOW_MARKER}\n\n")
    assert forwarded.startswith("________________________________\nFrom: Jan Jansen")
    assert "Yes, I will attend. Housing session please." in forwarded


def test_the_same_words_above_a_reply_quote_show_no_quote() -> None:
    """Under "RE:" Outlook's header block is the quoted invitation, not a forward."""
    u = understand(_mail("RE: Uitnodiging", "Zie hieronder.\n\n" + OUTLOOK_BLOCK), sessions())
    assert u.kind is ReplyKind.UNCLEAR
    assert u.reply_text == "Zie hieronder."


@pytest.mark.parametrize(
    "own",
    [
        "Nee, helaas, ik kan niet.",  # an answer: the reply, read as usual
        "Ik weet het nog niet.",  # a hedge: the sender's own doubt, for a human as it is
        "Komt de wethouder ook op de lijst?",  # a question of their own
    ],
)
def test_words_that_say_something_are_shown_alone(own: str) -> None:
    u = understand(_mail("FW: RE: Uitnodiging", f"{own}\n\n{OUTLOOK_BLOCK}"), sessions())
    assert u.reply_text == own


def test_words_above_the_forward_are_the_answer() -> None:
    raw = _mail("FW: RE: Uitnodiging", "Nee, helaas, ik kan niet.\n\n" + OUTLOOK_BLOCK)
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.DECLINE  # the forwarded "Ja, ik ga graag" does not count
    assert u.reply_text == "Nee, helaas, ik kan niet."


def test_an_empty_reply_is_not_taken_for_a_forward() -> None:
    u = understand((REPLIES / "subject-ours-afmelding-leeg.eml").read_bytes(), sessions())
    assert u.kind is ReplyKind.UNCLEAR
    assert u.reply_text == ""


def test_a_forward_from_an_automatic_sender_stays_automatic() -> None:
    raw = _mail("FW: Uitnodiging", "\n\n---------- Forwarded message ---------\nJa, ik kom.",
                sender="noreply@zaanstad.nl")  # fmt: skip
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.AUTO_REPLY


# --- Amazon SES notices -----------------------------------------------------------------------


def _notice(kind: str, **fields: object) -> dict[str, object]:
    return {"notificationType": kind, **fields, "mail": {"messageId": "x", "destination": []}}


def _bounce(bounce_type: str, *addresses: str) -> dict[str, object]:
    rows = [{"emailAddress": a, "action": "failed", "status": "5.1.1"} for a in addresses]
    return _notice("Bounce", bounce={"bounceType": bounce_type, "bounceSubType": "General",
                                     "bouncedRecipients": rows})  # fmt: skip


@pytest.mark.parametrize(
    ("bounce_type", "permanent"),
    [("Permanent", True), ("Transient", False), ("Undetermined", False)],
)
def test_ses_bounce_types(bounce_type: str, permanent: bool) -> None:
    notice = ses.read_notice(json.dumps(_bounce(bounce_type, "A@B.nl", "c@d.nl", "a@b.nl")))
    assert notice is not None
    assert notice.kind == ses.BOUNCE
    assert notice.recipients == ("a@b.nl", "c@d.nl")
    assert notice.permanent is permanent


def test_ses_notice_inside_the_sns_envelope_with_a_footer() -> None:
    envelope = {"Type": "Notification", "Message": json.dumps(_bounce("Permanent", "x@y.nl"))}
    body = json.dumps(envelope, indent=2) + "\n\n--\nIf you wish to stop receiving notifications"
    notice = ses.read_notice(body)
    assert notice is not None and notice.recipients == ("x@y.nl",) and notice.permanent


def test_ses_line_broken_by_sendmail_is_joined_again() -> None:
    line = json.dumps(_bounce("Permanent", "x@y.nl"), separators=(",", ":"))
    wrapped = line[:40] + "!\n " + line[40:]
    assert json.loads(line)  # the unbroken line is valid JSON …
    notice = ses.read_notice(wrapped)  # … and so is the broken one, once joined
    assert notice is not None and notice.recipients == ("x@y.nl",)


def test_ses_event_publishing_writes_event_type() -> None:
    data = _bounce("Transient", "x@y.nl")
    data["eventType"] = data.pop("notificationType")
    notice = ses.read_notice(json.dumps(data))
    assert notice is not None and notice.kind == ses.BOUNCE and not notice.permanent


@pytest.mark.parametrize(
    "body",
    [
        "{ja, ik kom graag}",  # braces in a human reply
        '{"notificationType": "Bounce"',  # cut off
        json.dumps({"notificationType": "Bounce", "bounce": {}}),  # no "mail": not SES
        json.dumps({"eventType": 7, "mail": {}}),
        "Zie de notificationType hieronder: {}",  # not at the start
        json.dumps(["notificationType"]),
    ],
)
def test_not_an_ses_notice(body: str) -> None:
    assert ses.read_notice(body) is None


def test_ses_complaint_is_for_a_human_and_never_an_answer() -> None:
    raw = _mail("AWS Notification Message",
                json.dumps(_notice("Complaint", complaint={
                    "complainedRecipients": [{"emailAddress": "ja.ik.kom@graag.nl"}],
                    "complaintFeedbackType": "abuse"})),
                sender="no-reply@sns.amazonaws.com")  # fmt: skip
    u = understand(raw, sessions())
    assert u.kind is ReplyKind.UNCLEAR and u.is_automatic
    assert any("complaint" in n and "ja.ik.kom@graag.nl" in n for n in u.notes)
