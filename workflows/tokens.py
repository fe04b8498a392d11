"""Invitation tokens: unguessable, case-insensitive, and findable in an address or a text.

A token is 160 random bits in lowercase base32 (32 characters of ``[a-z2-7]``). Base32 and not
base64 because mail systems may change the case of an address's local part; lowercase because
some clients lower-case whatever they quote back.

It travels in three places so that a reply which loses one still matches:
- the Reply-To address: ``aanmelden+<token>@domain`` (plus-addressing);
- the body and the subject as the marker ``rsvp:<token>``;
- the calendar UID: ``<token>@rsvpmail``.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets

TOKEN_LENGTH = 32
_TOKEN_CHARS = r"[a-z2-7]{32}"

# `aanmelden+TOKEN@example.org` (any local part before the plus).
ADDRESS_TOKEN_RE = re.compile(rf"\+({_TOKEN_CHARS})@", re.IGNORECASE)
# `rsvp:TOKEN` in a subject or body, possibly quoted back with "> " or wrapped in brackets.
TEXT_TOKEN_RE = re.compile(rf"\brsvp[:\-]\s?({_TOKEN_CHARS})\b", re.IGNORECASE)
# `TOKEN@rsvpmail` as a calendar UID.
UID_TOKEN_RE = re.compile(rf"\b({_TOKEN_CHARS})@rsvpmail\b", re.IGNORECASE)


def new_token() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").lower()


def text_marker(token: str) -> str:
    """The marker put in subjects and bodies: ``rsvp:<token>``."""
    return f"rsvp:{token}"


def calendar_uid(token: str) -> str:
    return f"{token}@rsvpmail"


def plus_address(reply_address: str, token: str) -> str:
    """``aanmelden@x.nl`` + token → ``aanmelden+<token>@x.nl``."""
    local, _, domain = reply_address.partition("@")
    return f"{local}+{token}@{domain}"


def find_in_address(address: str) -> str | None:
    m = ADDRESS_TOKEN_RE.search(address)
    return m.group(1).lower() if m else None


def find_in_text(text: str) -> str | None:
    m = TEXT_TOKEN_RE.search(text)
    return m.group(1).lower() if m else None


def find_in_uid(uid: str) -> str | None:
    m = UID_TOKEN_RE.search(uid)
    return m.group(1).lower() if m else None


def same_token(a: str, b: str) -> bool:
    """Constant-time comparison, so response timing reveals nothing about a guessed token."""
    return hmac.compare_digest(a.lower().encode(), b.lower().encode())
