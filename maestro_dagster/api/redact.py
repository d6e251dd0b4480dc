"""Keeping tokens out of the server log: uvicorn logs the path of every request with its query string (the
``uvicorn.access`` logger) and of every WebSocket handshake (``uvicorn.error``), and WebSocket clients pass their
token as ``?token=``.

``RedactTokens`` rewrites every ``token=<value>`` (any case, letters possibly percent-encoded) in a record's message
and arguments to ``token=[redacted]``;
``install`` puts it on those loggers once. ``create_app`` calls it, so ``maestro api`` (every worker) and any ASGI
server running the app log no token.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# ``token=`` in any case, its letters possibly percent-encoded (``%74oken=``: a query parser would decode the key)
TOKEN_IN_TEXT = re.compile(r"((?:t|%[57]4)(?:o|%[46]f)(?:k|%[46]b)(?:e|%[46]5)(?:n|%[46]e)=)[^&\s\"'#]+", re.IGNORECASE)
REDACTED = r"\1[redacted]"
LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(value: Any) -> Any:
    return TOKEN_IN_TEXT.sub(REDACTED, value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    """Redacts ``token=...`` in a record (uvicorn's access formatter reads ``record.args`` as they are: only the
    strings among them change, their number and order stay)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) for k, v in record.args.items()}
        return True


def install() -> None:
    """Add the filter to uvicorn's loggers (once; logging configuration keeps a logger's filters)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
