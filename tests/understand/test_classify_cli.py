"""`rsvpmail classify`: one JSON object per file, exact keys; clear errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from jobs.cli import app
from tests.understand._common import EVENT_TOML, REPLIES

KEYS = [
    "file",
    "kind",
    "session",
    "companions",
    "substitute",
    "dietary",
    "has_question",
    "mentions_cancellation",
    "bounce_permanent",
    "bounced_recipients",
    "language",
    "token",
    "reply_text",
]


def test_classify_prints_one_object_per_file() -> None:
    files = [REPLIES / "ja-ik-kom-wonen-karin--gmail.eml", REPLIES / "bounce-dsn-511.eml"]
    result = CliRunner().invoke(app, ["classify", "--event", str(EVENT_TOML), *map(str, files)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert list(first) == KEYS and list(second) == KEYS
    assert first["file"] == str(files[0])
    assert (first["kind"], first["session"]) == ("accept", "wonen")
    assert first["companions"] == [{"name": "Karin Smit", "email": None}]
    assert (second["kind"], second["bounce_permanent"]) == ("bounce", True)


def test_classify_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.eml"
    result = CliRunner().invoke(app, ["classify", "--event", str(EVENT_TOML), str(missing)])
    assert result.exit_code == 2
    assert "nope.eml" in result.stderr and "Traceback" not in result.output


def test_classify_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("slug = 'x'\n")
    eml = REPLIES / "ja-kort.eml"
    result = CliRunner().invoke(app, ["classify", "--event", str(bad), str(eml)])
    assert result.exit_code == 2
    assert "bad.toml" in result.stderr
