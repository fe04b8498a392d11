"""pytest plugin: local mail stacks (Dovecot IMAP/LMTP + SMTP) for integration tests.

Enable with ``pytest_plugins = ["tests.fixtures_mail"]`` in ``tests/conftest.py``.

* ``mailstack`` (session scope): one running :class:`devmail.MailStack` per test
  session, i.e. per pytest-xdist worker. Mailboxes are shared between tests, so use
  addresses of your own (the ``mail_address`` factory makes unique ones). Faults
  injected with ``mailstack.smtp.fail_next()/reject_recipient()`` are cleared after
  every test.
* ``fresh_mailstack`` (function scope): a private stack for tests that need empty
  mailboxes, their own ports or that stop the stack.
* ``mail_address``: ``mail_address("aanmelden", "x.example")`` returns e.g.
  ``"aanmelden-3f9c2a1b@x.example"``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devmail import MailStack

# Session stacks started by this plugin, so faults can be reset after each test without
# forcing every test (unit tests included) to start Dovecot.
_session_stacks: list[MailStack] = []


@pytest.fixture(scope="session")
def mailstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailStack]:
    """A mail stack shared by all tests of this session (or xdist worker)."""
    with MailStack(tmp_path_factory.mktemp("devmail")) as stack:
        _session_stacks.append(stack)
        try:
            yield stack
        finally:
            _session_stacks.remove(stack)


@pytest.fixture
def fresh_mailstack(tmp_path: Path) -> Iterator[MailStack]:
    """A mail stack of this test's own, stopped at the end of the test."""
    with MailStack(tmp_path / "devmail") as stack:
        yield stack


@pytest.fixture(autouse=True)
def _reset_mailstack_faults() -> Iterator[None]:
    yield
    for stack in _session_stacks:
        stack.smtp.clear_faults()
        stack.smtp.store_messages = True


@pytest.fixture
def mail_address() -> Callable[..., str]:
    """Factory for addresses no other test uses (mailboxes of ``mailstack`` are shared)."""

    def make(local: str = "user", domain: str = "x.example") -> str:
        return f"{local}-{uuid.uuid4().hex[:8]}@{domain}".lower()

    return make
