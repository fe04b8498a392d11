"""Memos that live exactly as long as one database transaction.

Processing one message asks the same questions more than once (which invitation has this
token, which is the locked answer counter of this sender). Within one transaction the answer
cannot change under us, or is protected by a lock we hold; after it, it may. So each memo
belongs to the session's outermost transaction and is dropped when a new one begins: nothing
cached here can outlive the transaction that read it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_KEY = "rsvpmail.txcache"
_LISTENING = "rsvpmail.txcache.listening"


def transaction_memo(db: Session, name: str) -> dict[Any, Any]:
    """The memo `name` of the session's current transaction (empty in a new transaction).

    Without a transaction there is nothing to share: a fresh dict that nobody keeps.
    """
    transaction = db.get_transaction()
    if transaction is None:
        return {}
    held: tuple[SessionTransaction, dict[str, dict[Any, Any]]] | None = db.info.get(_KEY)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        db.info[_KEY] = held
        if not db.info.get(_LISTENING):
            db.info[_LISTENING] = True
            event.listen(db, "after_transaction_end", _drop_memos)
    return held[1].setdefault(name, {})


def _drop_memos(db: Session, transaction: SessionTransaction) -> None:
    # The memos may hold loaded objects: let them go with their transaction, so a
    # long-lived session does not keep them (and their then stale attributes) alive.
    held = db.info.get(_KEY)
    if held is not None and held[0] is transaction:
        del db.info[_KEY]
