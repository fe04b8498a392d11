"""Rendering a mail's subject, plain text and HTML from its Jinja2 templates.

Built-in templates (this package) render in a normal Environment. An organiser may override
any of them in a directory of their own (`extra.templates_dir` in the event config); those
render in a SandboxedEnvironment, because an organiser's template is not code we reviewed.
HTML templates autoescape; subject and text templates do not (they are not HTML).

Undefined variables: tests switch on StrictUndefined (`set_strict(True)`) so a typo in a
template fails loudly. In production a missing value renders as empty text and is logged,
because a slightly incomplete mail beats no confirmation at all.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import (
    BaseLoader,
    ChainableUndefined,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    make_logging_undefined,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from workflows.errors import RsvpError

BUILTIN_DIR = Path(__file__).resolve().parent
PARTS = ("subject", "txt", "html")

log = logging.getLogger(__name__)

_strict_lock = threading.Lock()
_strict = False

# Remote stylesheets are never fetched: rendering does no network IO, and an override
# template must not make the service call out.
_inliner = css_inline.CSSInliner(load_remote_stylesheets=False)


class MailTemplateError(RsvpError):
    """A template could not be rendered; says which template and why."""


class MailTemplateSecurityError(MailTemplateError):
    """An override template tried something the sandbox forbids."""


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def set_strict(strict: bool) -> bool:
    """Make undefined template variables an error (tests); returns the previous setting."""
    global _strict
    with _strict_lock:
        previous, _strict = _strict, strict
    return previous


def render_mail(
    kind: str, lang: str, context: dict[str, Any], templates_dir: Path | None = None
) -> RenderedMail:
    """Render the three parts of mail `kind` in `lang`; overrides in `templates_dir` win."""
    subject = _render(f"{lang}/{kind}.subject.j2", context, templates_dir)
    text = _render(f"{lang}/{kind}.txt.j2", context, templates_dir)
    html = _render(f"{lang}/{kind}.html.j2", context, templates_dir)
    return RenderedMail(
        subject=" ".join(subject.split()),
        text=tidy_text(text),
        html=_inline_css(html),
    )


def render_partial(name: str, context: dict[str, Any], templates_dir: Path | None = None) -> str:
    """Render one plain-text template by name (e.g. the calendar item's description)."""
    return tidy_text(_render(name, context, templates_dir))


def tidy_text(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, one final newline."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    tidied = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
    return tidied + "\n"


def _render(name: str, context: dict[str, Any], templates_dir: Path | None) -> str:
    env: Environment
    if templates_dir is not None and (templates_dir / name).is_file():
        env, origin = _sandbox_env(str(templates_dir), _strict), str(templates_dir / name)
    else:
        env, origin = _builtin_env(_strict), f"built-in template {name}"
    try:
        return env.get_template(name).render(context)
    except SecurityError as exc:
        raise MailTemplateSecurityError(f"{origin}: not allowed in a mail template: {exc}") from exc
    except TemplateSyntaxError as exc:
        where = f"{exc.filename or origin}, line {exc.lineno}"
        raise MailTemplateError(f"{where}: template syntax error: {exc.message}") from exc
    except TemplateError as exc:
        raise MailTemplateError(f"{origin}: cannot render: {exc}") from exc


def _inline_css(html: str) -> str:
    # Outlook ignores <style> blocks in many versions, so every rule goes into style="".
    return str(_inliner.inline(html))


def _undefined(strict: bool) -> type[Undefined]:
    if strict:
        return StrictUndefined
    return make_logging_undefined(log, ChainableUndefined)


def _options(strict: bool) -> dict[str, Any]:
    return {
        "autoescape": select_autoescape(enabled_extensions=("html.j2",), default=False),
        "undefined": _undefined(strict),
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
    }


@lru_cache(maxsize=4)
def _builtin_env(strict: bool) -> Environment:
    # The built-in templates ship with the code and change only with it: no stat() of every
    # template and include on every render to see whether it changed on disk.
    return Environment(loader=FileSystemLoader(BUILTIN_DIR), auto_reload=False, **_options(strict))


class _RefusingSandbox(SandboxedEnvironment):
    """A sandbox that refuses unsafe attribute access at once instead of rendering it empty.

    The stock sandbox returns an Undefined for `x.__class__`, which a lenient Undefined would
    silently print as nothing; an organiser should rather hear that the template is refused.
    """

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(
            f"access to attribute {attribute!r} of a {type(obj).__name__} object is unsafe"
        )


@lru_cache(maxsize=16)
def _sandbox_env(templates_dir: str, strict: bool) -> Environment:
    # Overrides may include the built-in partials (macros, layout), rendered sandboxed too.
    loader: BaseLoader = ChoiceLoader(
        [FileSystemLoader(templates_dir), FileSystemLoader(BUILTIN_DIR)]
    )
    return _RefusingSandbox(loader=loader, **_options(strict))
