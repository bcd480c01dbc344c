"""Posting a notification over HTTP, with timeouts and polite retries.

:func:`post` sends one JSON body to one webhook and returns the channel's entry for the report's
``notifications`` list: ``{"channel", "status": "sent" | "failed", "detail"}``. It never raises.

The request goes through an azure-core pipeline, as the Event Grid channel's does, whose retry loop
is azure-core's ``RetryPolicy`` with this app's rules (:class:`WebhookRetryPolicy`):

- Timeouts: connect 5 s, read 10 s (:class:`RetryPolicy`).
- Retried: HTTP 429 and 5xx, timeouts, connection errors, and Teams' throttling in disguise (HTTP 200
  whose body says "Microsoft Teams endpoint returned HTTP error 429"). Not retried: other 4xx, and
  redirects (a webhook that redirects is misconfigured; following it would send the report elsewhere).
- Waits: ``Retry-After`` (seconds or an HTTP date) when the server gives one, else exponential backoff
  with jitter; each wait is capped (30 s) and all attempts share a time budget (60 s).
- The detail never holds the URL: webhook URLs are credentials. Exception texts (which name the URL)
  are reduced to their type, response snippets are scrubbed of the URL and of known secrets
  (:mod:`remediation.redaction`). The pipeline has no logging policy, so azure-core logs no URL either.
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

import requests
from azure.core import PipelineClient
from azure.core.exceptions import (
    AzureError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import RetryPolicy as CoreRetryPolicy
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import HttpTransport, RequestsTransport
from azure.core.rest import HttpRequest, HttpResponse

from remediation.redaction import scrub, url_secrets

log = logging.getLogger(__name__)

TEAMS_THROTTLED = "Microsoft Teams endpoint returned HTTP error 429"

Sleep = Callable[[float], None]
Jitter = Callable[[float, float], float]


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


class WebhookRetryPolicy(CoreRetryPolicy[HttpRequest, HttpResponse]):
    """azure-core's retry loop with the webhook rules of the module docstring.

    One instance serves one delivery: it logs each retry under the delivery's ``channel`` (the
    reason scrubbed of ``hidden``), waits with the injected ``sleep``, and records in
    :attr:`budget_spent` whether the time budget, rather than the attempts, ended the retries.
    """

    def __init__(
        self, policy: RetryPolicy, *, channel: str, hidden: Iterable[str], sleep: Sleep, jitter: Jitter
    ) -> None:
        retries = max(policy.max_attempts - 1, 0)
        # Every kind of failure draws on the same count, so max_attempts is the limit whatever fails.
        super().__init__(retry_total=retries, retry_connect=retries, retry_read=retries, retry_status=retries,
                         retry_backoff_factor=policy.base_delay, retry_backoff_max=policy.max_delay)
        self._policy = policy
        self._channel = channel
        self._hidden = list(hidden)
        self._sleep = sleep
        self._jitter = jitter
        self._started = time.monotonic()
        self._waited = 0.0
        self._slept = 0.0
        self._next_wait = 0.0
        self._reason = ""
        self.budget_spent = False

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        # azure-core retries only idempotent methods by default; a webhook is a POST, and a
        # duplicate chat message is a smaller harm than a lost one.
        settings["methods"] = frozenset({"POST"})
        return settings

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        answer: HttpResponse = response.http_response
        if 200 <= answer.status_code < 300:
            return TEAMS_THROTTLED in answer.text()
        return answer.status_code == 429 or answer.status_code >= 500

    def get_retry_after(self, response: PipelineResponse[Any, Any]) -> float | None:
        answer: HttpResponse = response.http_response
        return retry_after_seconds(answer.headers.get("Retry-After"))

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        # Exponential backoff with "equal jitter": half fixed, half random, so retries spread out.
        attempt = len(settings["history"])
        ceiling = min(self._policy.base_delay * 2.0 ** (attempt - 1), self._policy.max_delay)
        return ceiling / 2 + float(self._jitter(0.0, ceiling / 2))

    def increment(
        self,
        settings: dict[str, Any],
        response: PipelineRequest[Any] | PipelineResponse[Any, Any] | None = None,
        error: Exception | None = None,
    ) -> bool:
        if error is not None and not _failure(error)[0]:
            return False
        if not super().increment(settings, response=response, error=error):
            return False
        retry_after = None
        if isinstance(response, PipelineResponse):
            self._reason = _describe(response.http_response, self._hidden)
            retry_after = self.get_retry_after(response)
        elif error is not None:
            self._reason = _failure(error)[1]
        wait = self.get_backoff_time(settings) if retry_after is None else min(retry_after, self._policy.max_delay)
        spent = time.monotonic() - self._started - self._slept + self._waited
        if spent + wait > self._policy.budget:
            self.budget_spent = True
            return False
        self._next_wait = wait
        return True

    def sleep(
        self,
        settings: dict[str, Any],
        transport: HttpTransport[HttpRequest, HttpResponse],
        response: PipelineResponse[HttpRequest, HttpResponse] | None = None,
    ) -> None:
        log.warning(
            "notification %s: %s; retrying in %.1f s (attempt %d of %d)",
            self._channel, self._reason, self._next_wait, len(settings["history"]), self._policy.max_attempts,
        )
        started = time.monotonic()
        self._sleep(self._next_wait)
        # The budget counts the wait as asked for, so an injected sleep counts as a real one.
        self._slept += time.monotonic() - started
        self._waited += self._next_wait


class _CountAttempts(SansIOHTTPPolicy[HttpRequest, HttpResponse]):
    """Counts the requests sent (it sits after the retry policy, so it sees every attempt)."""

    def __init__(self) -> None:
        self.count = 0

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        self.count += 1


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
    jitter: Jitter = random.uniform,
) -> dict[str, str]:
    """POST ``body`` (JSON) to ``url``, retrying per ``policy``; the channel's notification entry.

    ``sleep`` and ``jitter`` are injectable so tests can measure the waits without waiting; a
    ``session`` is used as is (its ``verify`` and ``cert`` included) and left open.
    """
    hidden = [*url_secrets(url), *secrets]
    retry = WebhookRetryPolicy(policy, channel=channel, hidden=hidden, sleep=sleep, jitter=jitter)
    attempts = _CountAttempts()
    send = session or requests.Session()
    # The transport would otherwise impose its own verify and cert over the session's.
    transport = RequestsTransport(session=send, session_owner=False, connection_verify=send.verify,
                                  connection_cert=send.cert)
    request = HttpRequest(
        "POST", url, content=body, headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    )
    try:
        client: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            url, policies=[retry, attempts], transport=transport
        )
        with client:
            response = client.send_request(
                request, connection_timeout=policy.connect_timeout, read_timeout=policy.read_timeout
            )
    except AzureError as exc:
        reason = _failure(exc)[1]
    else:
        reason = _describe(response, hidden)
        if 200 <= response.status_code < 300 and TEAMS_THROTTLED not in response.text():
            detail = f"{reason} after {_attempts(attempts.count)}"
            log.info("notification %s sent: %s", channel, detail)
            return {"channel": channel, "status": "sent", "detail": detail}
    finally:
        if session is None:
            send.close()
    if retry.budget_spent:
        reason += f"; retry budget of {policy.budget:g} s spent"
    detail = f"{reason} (gave up after {_attempts(attempts.count)})"
    log.warning("notification %s failed: %s", channel, detail)
    return {"channel": channel, "status": "failed", "detail": detail}


def _attempts(n: int) -> str:
    return f"{n} attempt{'s' if n > 1 else ''}"


def _describe(response: HttpResponse, hidden: Iterable[str]) -> str:
    """What an answer said, for a detail or a log line: ``HTTP 400: <scrubbed snippet>``."""
    status = response.status_code
    if 200 <= status < 300:
        if TEAMS_THROTTLED in response.text():
            return f"HTTP {status} reporting Teams throttling (429)"
        return f"HTTP {status}"
    text = _snippet(response, hidden)
    return f"HTTP {status}" + (f": {text}" if text else "")


def _failure(error: BaseException) -> tuple[bool, str]:
    """(whether to retry, what happened) for a request that got no answer; names only the error's type."""
    inner = getattr(error, "inner_exception", None) or error
    name = type(inner).__name__
    if isinstance(inner, requests.Timeout) or isinstance(error, (ServiceRequestTimeoutError,
                                                                 ServiceResponseTimeoutError)):
        return True, f"timed out ({name})"
    if isinstance(inner, requests.ConnectionError) or isinstance(error, ServiceRequestError):
        return True, f"connection failed ({name})"
    return False, f"request failed ({name})"


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


def _snippet(response: HttpResponse, hidden: Iterable[str], limit: int = 300) -> str:
    try:
        text = " ".join(str(response.text()).split())
    except Exception:
        return ""
    cleaned = str(scrub(text, secrets=hidden))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
