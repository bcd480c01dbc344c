"""How the Azure layer reads SDK errors: one line for reports, and whether a retry may help."""

from __future__ import annotations

from azure.core.exceptions import HttpResponseError, ServiceRequestError


def is_transient(exc: Exception) -> bool:
    """Throttling, server errors and lost connections: a later attempt may succeed."""
    if isinstance(exc, ServiceRequestError):
        return True
    return isinstance(exc, HttpResponseError) and (exc.status_code == 429 or (exc.status_code or 0) >= 500)


def describe(exc: Exception, *, limit: int = 300) -> str:
    """``Code: first line of the message`` for ARM errors, ``Type: message`` otherwise."""
    if isinstance(exc, HttpResponseError) and exc.error is not None:
        return f"{exc.error.code}: {str(exc.error.message).splitlines()[0][:limit]}"
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0][:limit] if text else ''}"
