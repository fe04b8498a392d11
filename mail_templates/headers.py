"""Header values that are safe whatever a name or subject contains, and the fixed headers.

Names come from invitee lists and from replies ("Jan\\r\\nBcc: evil@x"); every text that goes
into a header loses its control characters first, and addresses go through
email.headerregistry.Address so non-ASCII names are RFC 2047 encoded instead of mangled.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from email.headerregistry import Address
from email.policy import EmailPolicy
from email.utils import parseaddr
from functools import lru_cache
from typing import Any

from workflows.errors import RsvpError
from workflows.tokens import plus_address

# C0 and C1 controls plus the Unicode line and paragraph separators: any of them could end a
# header line in some parser.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MESSAGE_ID_RE = re.compile(r"^<[^<>\s]+@[^<>\s]+>$")
MAX_NAME_CHARS = 200
MAX_SUBJECT_CHARS = 250
# A References header keeps the thread's root and the most recent ancestors; more does not
# help threading and only makes the header long.
MAX_REFERENCES = 20

# Exchange honours this and does not send out-of-office or other automatic answers to us.
# Not "All": that also asks Exchange to suppress non-delivery reports, and bounces are how
# an invitation is found undeliverable.
AUTO_RESPONSE_SUPPRESS = "OOF, AutoReply"
UNSUBSCRIBE_SUBJECT = "unsubscribe"


class MessagePolicy(EmailPolicy):
    """email.policy.SMTP, except that Message-IDs are never folded inside a header line.

    The stock policy folds a long `Message-ID: <…>` onto a continuation line, and Python's
    parser then returns the ID with a leading space: a reply's In-Reply-To would no longer
    compare equal to what we stored. References keeps one ID per line instead.
    """

    def fold(self, name: str, value: Any) -> str:
        return self._fold_ids(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded = self._fold_ids(name, value)
        return folded.encode("ascii") if folded else super().fold_binary(name, value)

    def _fold_ids(self, name: str, value: Any) -> str | None:
        if name.lower() not in _ID_HEADERS:
            return None
        ids = str(value).split()
        if not ids or not all(_MESSAGE_ID_RE.match(i) and i.isascii() for i in ids):
            return None  # not our clean IDs: let the stock policy handle it
        return f"{name}: " + f"{self.linesep} ".join(ids) + self.linesep


_ID_HEADERS = frozenset({"message-id", "in-reply-to", "references"})
SMTP_POLICY = MessagePolicy(linesep="\r\n")


class BadAddress(RsvpError):
    """An address that cannot be put in a header."""


def clean_header_text(value: str, limit: int = MAX_NAME_CHARS) -> str:
    """`value` on one line: control characters become spaces, runs of spaces collapse."""
    return " ".join(_CONTROL_RE.sub(" ", value).split())[:limit].strip()


def mailbox(name: str, address: str, *, what: str) -> Address:
    """A safe `Name <address>`; `what` says in an error which header it was for."""
    clean_address = clean_header_text(address, limit=320)
    if clean_address != address.strip() or "@" not in clean_address:
        raise BadAddress(f"{what}: not a usable e-mail address: {address!r}")
    local, _, domain = clean_address.rpartition("@")
    try:
        return Address(display_name=clean_header_text(name), username=local, domain=domain)
    except (ValueError, IndexError) as exc:
        raise BadAddress(f"{what}: not a usable e-mail address: {address!r} ({exc})") from exc


@lru_cache(maxsize=64)
def sender_mailbox(sender: str) -> Address:
    """The event's configured sender, 'WijkWijzer namens BZK <aanmelden@…>'.

    Cached: the same few senders head every mail, and an Address never changes."""
    name, address = parseaddr(sender)
    return mailbox(name, address or sender, what="event sender")


def reply_to_address(reply_address: str, token: str | None) -> str:
    """`aanmelden+<token>@domain` so a reply finds its invitation; the bare box without one."""
    return plus_address(reply_address, token) if token else reply_address


def thread_headers(in_reply_to: Sequence[str]) -> tuple[str | None, str | None]:
    """(In-Reply-To, References) for an answer; `in_reply_to` starts with the parent's ID.

    The parent comes first in `in_reply_to` (then its own references, oldest first), while
    RFC 5322 wants References oldest first with the parent last, so the parent moves to the end.
    Anything that does not look like a Message-ID is dropped rather than copied into a header.
    """
    ids = [i.strip() for i in in_reply_to if _MESSAGE_ID_RE.match(i.strip())]
    if not ids:
        return None, None
    parent, ancestors = ids[0], [i for i in ids[1:] if i != ids[0]]
    if len(ancestors) > MAX_REFERENCES - 1:
        ancestors = ancestors[:1] + ancestors[-(MAX_REFERENCES - 2) :]
    return parent, " ".join([*ancestors, parent])


def list_unsubscribe(
    reply_address: str, token: str | None, unsubscribe_url: str
) -> tuple[str, bool]:
    """(List-Unsubscribe value, whether one-click POST is offered).

    The mailto goes to the invitation's own reply address with subject and body
    "unsubscribe", so the inbound side finds the token in the address and the wish in the
    text like any other reply. An https URL (RFC 8058 one-click) is offered only when the
    event configures one and there is a token to say who is unsubscribing.
    """
    query = urllib.parse.urlencode(
        {"subject": UNSUBSCRIBE_SUBJECT, "body": UNSUBSCRIBE_SUBJECT}, quote_via=urllib.parse.quote
    )
    mailto = f"<mailto:{reply_to_address(reply_address, token)}?{query}>"
    if not (unsubscribe_url and token):
        return mailto, False
    separator = "&" if "?" in unsubscribe_url else "?"
    url = f"{unsubscribe_url}{separator}token={urllib.parse.quote(token)}"
    return f"<{clean_header_text(url, limit=900)}>, {mailto}", True
