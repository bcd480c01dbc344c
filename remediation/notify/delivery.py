"""Posting a notification over HTTP, with timeouts and polite retries.

:func:`post` sends one JSON body to one webhook and returns the channel's entry for the report's
``notifications`` list: ``{"channel", "status": "sent" | "failed", "detail"}``. It never raises.

- Timeouts: connect 5 s, read 10 s (:class:`RetryPolicy`).
- Retried: HTTP 429 and 5xx, timeouts, connection errors, and Teams' throttling in disguise (HTTP 200
  whose body says "Microsoft Teams endpoint returned HTTP error 429"). Not retried: other 4xx, and
  redirects (a webhook that redirects is misconfigured; following it would send the report elsewhere).
- Waits: ``Retry-After`` (seconds or an HTTP date) when the server gives one, else exponential backoff
  with jitter; each wait is capped (30 s) and all attempts share a time budget (60 s).
- The detail never holds the URL: webhook URLs are credentials. Exception texts (which name the URL)
  are reduced to their type, response snippets are scrubbed of the URL and of known secrets.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from remediation.report import REDACTED, scrub

log = logging.getLogger(__name__)

TEAMS_THROTTLED = "Microsoft Teams endpoint returned HTTP error 429"

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for a webhook, and how hard to retry it."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 5
    base_delay: float = 1.0
    """First backoff wait (doubled per attempt, with jitter) when the server gives no Retry-After."""
    max_delay: float = 30.0
    """Cap on any single wait, Retry-After included."""
    budget: float = 60.0
    """Total seconds (requests and waits) one delivery may take before it is given up."""


DEFAULT_POLICY = RetryPolicy()


def post(
    channel: str,
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Sleep = time.sleep,
    session: requests.Session | None = None,
    secrets: Iterable[str] = (),
    jitter: Callable[[float, float], float] = random.uniform,
) -> dict[str, str]:
    """POST ``body`` (JSON) to ``url``, retrying per ``policy``; the channel's notification entry.

    ``sleep`` is injectable so tests can measure the waits without waiting.
    """
    hidden = _hidden(url, secrets)
    send = session or requests.Session()
    all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    spent = 0.0
    reason = "not attempted"
    attempt = 0
    try:
        for attempt in range(1, policy.max_attempts + 1):
            started = time.monotonic()
            retry, reason, retry_after = _attempt(send, url, body, all_headers, policy, hidden)
            spent += time.monotonic() - started
            if retry is None:
                detail = f"{reason} after {attempt} attempt{'s' if attempt > 1 else ''}"
                log.info("notification %s sent: %s", channel, detail)
                return {"channel": channel, "status": "sent", "detail": detail}
            if not retry or attempt == policy.max_attempts:
                break
            wait = _wait(attempt, retry_after, policy, jitter)
            if spent + wait > policy.budget:
                reason += f"; retry budget of {policy.budget:g} s spent"
                break
            log.warning(
                "notification %s: %s; retrying in %.1f s (attempt %d of %d)",
                channel, reason, wait, attempt, policy.max_attempts,
            )
            sleep(wait)
            spent += wait
    finally:
        if session is None:
            send.close()
    detail = f"{reason} (gave up after {attempt} attempt{'s' if attempt > 1 else ''})"
    log.warning("notification %s failed: %s", channel, detail)
    return {"channel": channel, "status": "failed", "detail": detail}


def _attempt(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    policy: RetryPolicy,
    hidden: list[str],
) -> tuple[bool | None, str, float | None]:
    """(None: delivered | True: retry | False: give up, what happened, Retry-After seconds)."""
    try:
        response = session.post(
            url,
            data=body,
            headers=dict(headers),
            timeout=(policy.connect_timeout, policy.read_timeout),
            allow_redirects=False,
        )
    except requests.Timeout as exc:
        return True, f"timed out ({type(exc).__name__})", None
    except requests.ConnectionError as exc:
        return True, f"connection failed ({type(exc).__name__})", None
    except requests.RequestException as exc:
        return False, f"request failed ({type(exc).__name__})", None
    status = int(response.status_code)
    text = _snippet(response, hidden)
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    if 200 <= status < 300:
        if TEAMS_THROTTLED in response.text:
            return True, f"HTTP {status} reporting Teams throttling (429)", retry_after
        return None, f"HTTP {status}", None
    described = f"HTTP {status}" + (f": {text}" if text else "")
    if status == 429 or status >= 500:
        return True, described, retry_after
    return False, described, None


def _wait(
    attempt: int, retry_after: float | None, policy: RetryPolicy, jitter: Callable[[float, float], float]
) -> float:
    if retry_after is not None:
        return min(retry_after, policy.max_delay)
    # Exponential backoff with "equal jitter": half fixed, half random, so retries spread out.
    ceiling = min(policy.base_delay * 2.0 ** (attempt - 1), policy.max_delay)
    return ceiling / 2 + float(jitter(0.0, ceiling / 2))


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), None if absent/bad."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


def _hidden(url: str, secrets: Iterable[str]) -> list[str]:
    """Strings that must never appear in a detail: the URL, its path and query, known secrets."""
    parts = urlsplit(url)
    # Webhook URLs carry their credential in an id-like path segment (Slack) or a query value
    # (Workflows' sig=), so those are hidden one by one too, in case a response echoes a piece.
    ids = [seg for seg in parts.path.split("/") if len(seg) >= 16 or (len(seg) >= 6 and any(c.isdigit() for c in seg))]
    values = [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    candidates = [url, url.rstrip("/"), parts.path, parts.query, *ids, *values, *secrets]
    return [c for c in candidates if c and len(c) >= 4 and c != "/"]


def _snippet(response: Any, hidden: list[str], limit: int = 300) -> str:
    try:
        text = " ".join(str(response.text).split())
    except Exception:
        return ""
    for value in sorted(hidden, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    cleaned = str(scrub(text))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def redact(text: str, url: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without ``url`` (or its path/query) and without the ``secrets``; for callers' details."""
    for value in sorted(_hidden(url, secrets), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return str(scrub(text))
