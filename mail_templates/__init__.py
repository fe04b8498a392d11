"""Mail composition: every mail rsvpmail sends, rendered from the Jinja2 templates here.

`build_message()` is the one entry point (called by `workflows.outbox.queue_mail`); see
mail_templates/README.md for the template layout, the variables templates see and the
header and calendar choices.
"""

from mail_templates.compose import build_message, build_message_bytes

__all__ = ["build_message", "build_message_bytes"]
