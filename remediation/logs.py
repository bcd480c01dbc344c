"""One record, one line: what the app logs cannot forge a log line.

Log fields come from events and replay bodies (a correlation id, a resource id, an error message),
so a value holding a line break could end a record and start a forged one in any line-oriented
sink (the console, a log file, a line-based forwarder). :class:`OneLineFilter` rewrites every line
break and other control character in a record's message, its arguments and its ``extra`` fields as
a visible escape (``\\n``, ``\\x1b``), so a record prints as one line; a traceback is left as it is.

:func:`install` puts the filter in front of every handler that receives records from the
``remediation`` logger and its children. A filter added to a logger sees only the records logged
on that very logger, not on its children (``remediation.service``), so the filter sits on a handler
of the ``remediation`` logger instead: records propagate from child to parent, and that handler
sees each one, and rewrites it, before the handlers further up (the Functions host's, on the root
logger) do.
"""

from __future__ import annotations

import logging
from typing import Any

LOGGER = "remediation"

# Every character that ends a line for str.splitlines, with the other C0 and C1 controls and DEL.
_ESCAPES = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})

# The attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def one_line(text: str) -> str:
    """``text`` with every line break and control character written as an escape."""
    return text.translate(_ESCAPES)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return one_line(value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clean(v) for v in value)
    return value


class OneLineFilter(logging.Filter):
    """Rewrites a record's message, arguments and ``extra`` fields to one line each (in place)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format: keep both, each one line
            message = f"{record.msg!s} {record.args!r}"
        # the message is formatted once here, so an argument's own repr (a dict, an exception) is covered too
        record.msg, record.args = one_line(message), None
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD:
                setattr(record, name, _clean(value))
        return True


class _RewriteOnly(logging.Handler):
    """A handler that writes nothing: its filter rewrites each record before the handlers above see it."""

    def emit(self, record: logging.LogRecord) -> None:
        # With no handler anywhere else, logging would have printed warnings through its last
        # resort; this handler must not silence them.
        if not logging.getLogger().handlers and logging.lastResort and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


def install() -> None:
    """Rewrite every record of the ``remediation`` loggers to one line; idempotent."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, _RewriteOnly) for h in logger.handlers):
        handler = _RewriteOnly()
        handler.addFilter(OneLineFilter())
        logger.addHandler(handler)
