"""The structured reading of one inbound message: what `understand()` returns.

Kept separate from the parser so the registration rules depend only on this small,
stable vocabulary and never on how the text was read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ReplyKind(StrEnum):
    """Exactly one of these per inbound message."""

    ACCEPT = "accept"
    DECLINE = "decline"
    TENTATIVE = "tentative"
    QUESTION = "question"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    UNCLEAR = "unclear"


@dataclass(frozen=True)
class PersonMention:
    """A colleague named in a reply: a companion who comes too, or a substitute."""

    name: str
    email: str | None = None
    session: str | None = None  # session key chosen for this person, when stated


@dataclass(frozen=True)
class Understanding:
    kind: ReplyKind
    session: str | None = None
    companions: tuple[PersonMention, ...] = ()
    substitute: PersonMention | None = None
    dietary: str | None = None
    has_question: bool = False
    mentions_cancellation: bool = False
    wants_unsubscribe: bool = False
    bounce_permanent: bool | None = None
    bounced_recipients: tuple[str, ...] = ()
    language: str = "nl"
    token: str | None = None
    reply_text: str = ""
    # Envelope facts the matcher needs; filled by the parser from the headers.
    message_id: str | None = None
    sender: str | None = None
    references: tuple[str, ...] = ()  # In-Reply-To first, then References
    calendar_uid: str | None = None
    calendar_attendee: str | None = None
    is_automatic: bool = False  # RFC 3834 / list / daemon: never answer it
    notes: tuple[str, ...] = field(default_factory=tuple)  # why it was read this way

    def as_json_dict(self, file: str) -> dict[str, object]:
        """The exact shape `rsvpmail classify` prints (one object per file)."""
        return {
            "file": file,
            "kind": self.kind.value,
            "session": self.session,
            "companions": [{"name": c.name, "email": c.email} for c in self.companions],
            "substitute": (
                {"name": self.substitute.name, "email": self.substitute.email}
                if self.substitute
                else None
            ),
            "dietary": self.dietary,
            "has_question": self.has_question,
            "mentions_cancellation": self.mentions_cancellation,
            "bounce_permanent": self.bounce_permanent if self.kind is ReplyKind.BOUNCE else None,
            "bounced_recipients": list(self.bounced_recipients),
            "language": self.language,
            "token": self.token,
            "reply_text": self.reply_text,
        }

    def to_record(self) -> dict[str, object]:
        """Everything, as JSON-safe data, for InboundMessage.classification."""
        data = dataclasses.asdict(self)
        data["kind"] = self.kind.value
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Understanding:
        values = dict(data)
        values["kind"] = ReplyKind(values["kind"])
        values["companions"] = tuple(PersonMention(**c) for c in values.get("companions", ()))
        sub = values.get("substitute")
        values["substitute"] = PersonMention(**sub) if sub else None
        for key in ("bounced_recipients", "references", "notes"):
            values[key] = tuple(values.get(key, ()))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
