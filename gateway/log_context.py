"""The message a task is working on, for the log lines it writes (``smsgw.log_json``).

A service sets ``MESSAGE_ID`` while it handles one message (the dispatcher, per send),
so that every line logged meanwhile, by our code or a provider's, carries its id
without passing it down. A line about a message outside such a task names it itself:
``extra={"message_id": id}``.
"""

from __future__ import annotations

from contextvars import ContextVar

MESSAGE_ID: ContextVar[int | None] = ContextVar("message_id", default=None)
