"""Shared by the understand tests: the event's sessions, loaded once."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from workflows.event_config import SessionSpec, load_event_config

REPO = Path(__file__).resolve().parents[2]
EVENT_TOML = REPO / "events" / "leren-van-rotterdam-zuid.toml"
REPLIES = Path(__file__).resolve().parent / "replies"


@lru_cache(maxsize=1)
def sessions() -> tuple[SessionSpec, ...]:
    return load_event_config(EVENT_TOML).sessions


def corpora_dir() -> Path:
    """shared/corpora next to the repository, or $RSVPMAIL_CORPORA."""
    env = os.environ.get("RSVPMAIL_CORPORA")
    if env:
        return Path(env)
    return (REPO / ".." / "shared" / "corpora").resolve()
