"""Posting with retries (remediation.notify.delivery) against a real local HTTP receiver
(tests/http_receiver.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from azure.core.pipeline.policies import RetryPolicy as CoreRetryPolicy

from remediation.notify import delivery
from remediation.notify.delivery import TEAMS_THROTTLED, RetryPolicy, post, retry_after_seconds
from tests.http_receiver import SECRET_PATH, Receiver, Reply


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


class Sleeps(list[float]):
    """An injected sleep that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


FAST = RetryPolicy(connect_timeout=1, read_timeout=2, max_attempts=4, base_delay=1, max_delay=30, budget=120)


def no_jitter(low: float, high: float) -> float:
    return high


def assert_no_url(entry: dict[str, str], url: str) -> None:
    for part in (url, "s3cr3t-SIGNATURE-value", "/workflows/0123abcd"):
        assert part not in entry["detail"]


# --- success and retries -------------------------------------------------------------------------


def test_success_posts_the_body_once(receiver: Receiver) -> None:
    sleeps = Sleeps()
    entry = post("teams", receiver.url(), b'{"type":"message"}', policy=FAST, sleep=sleeps)
    assert entry == {"channel": "teams", "status": "sent", "detail": "HTTP 200 after 1 attempt"}
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert got.body == b'{"type":"message"}'
    assert got.headers["content-type"].startswith("application/json")
    assert got.path.endswith("sig=s3cr3t-SIGNATURE-value")
    assert sleeps == []


def test_429_waits_as_long_as_retry_after_says(receiver: Receiver) -> None:
    receiver.replies = [Reply(429, "rate_limited", {"Retry-After": "3"}), Reply(200, "ok")]
    sleeps = Sleeps()
    entry = post("slack", receiver.url(), b"{}", policy=FAST, sleep=sleeps, jitter=no_jitter)
    assert entry["status"] == "sent" and "after 2 attempts" in entry["detail"]
    assert sleeps == [3.0]
    assert len(receiver.requests) == 2


def test_retry_after_as_an_http_date_is_honoured(receiver: Receiver) -> None:
    when = datetime.now(UTC) + timedelta(seconds=7)
    receiver.replies = [Reply(429, "", {"Retry-After": format_datetime(when, usegmt=True)})]
    sleeps = Sleeps()
    entry = post("slack", receiver.url(), b"{}", policy=FAST, sleep=sleeps)
    assert entry["status"] == "sent"
    assert len(sleeps) == 1 and 5.0 <= sleeps[0] <= 7.0


def test_a_long_retry_after_is_capped(receiver: Receiver) -> None:
    receiver.replies = [Reply(429, "", {"Retry-After": "3600"})]
    sleeps = Sleeps()
    post("slack", receiver.url(), b"{}", policy=FAST, sleep=sleeps)
    assert sleeps == [30.0]


def test_5xx_backs_off_exponentially_then_succeeds(receiver: Receiver) -> None:
    receiver.replies = [Reply(500, "boom"), Reply(503, "busy"), Reply(502, "bad gateway")]
    sleeps = Sleeps()
    entry = post("webhook", receiver.url(), b"{}", policy=FAST, sleep=sleeps, jitter=no_jitter)
    assert entry["status"] == "sent" and "after 4 attempts" in entry["detail"]
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(receiver.requests) == 4


def test_backoff_jitter_stays_within_half_and_full_step(receiver: Receiver) -> None:
    receiver.replies = [Reply(500), Reply(500), Reply(500)]
    sleeps = Sleeps()
    post("webhook", receiver.url(), b"{}", policy=FAST, sleep=sleeps)
    for attempt, wait in enumerate(sleeps, start=1):
        step = 2.0 ** (attempt - 1)
        assert step / 2 <= wait <= step


def test_persistent_5xx_gives_up_after_max_attempts(receiver: Receiver) -> None:
    receiver.default = Reply(500, "still broken")
    sleeps = Sleeps()
    entry = post("webhook", receiver.url(), b"{}", policy=FAST, sleep=sleeps)
    assert entry["status"] == "failed"
    assert entry["detail"].startswith("HTTP 500: still broken") and "gave up after 4 attempts" in entry["detail"]
    assert len(receiver.requests) == 4 and len(sleeps) == 3


def test_retry_budget_stops_retrying_early(receiver: Receiver) -> None:
    receiver.default = Reply(429, "", {"Retry-After": "25"})
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=10, budget=60)
    entry = post("teams", receiver.url(), b"{}", policy=policy, sleep=sleeps)
    assert entry["status"] == "failed" and "retry budget of 60 s spent" in entry["detail"]
    assert sleeps == [25.0, 25.0]
    assert len(receiver.requests) == 3


def test_timeout_is_retried_then_fails() -> None:
    slow = Receiver(default=Reply(200, "late", delay=4.0))
    try:
        sleeps = Sleeps()
        policy = RetryPolicy(connect_timeout=1, read_timeout=0.2, max_attempts=2)
        started = time.monotonic()
        entry = post("slack", slow.url(), b"{}", policy=policy, sleep=sleeps)
        elapsed = time.monotonic() - started
    finally:
        slow.stop()
    assert entry["status"] == "failed"
    assert entry["detail"].startswith("timed out (ReadTimeout)") and "gave up after 2 attempts" in entry["detail"]
    assert len(slow.requests) == 2 and len(sleeps) == 1
    assert elapsed < 3.0  # the 0.2 s read timeout, not the receiver's 4 s delay, bounded each attempt
    assert_no_url(entry, slow.url())


def test_teams_200_with_a_throttling_body_is_retried(receiver: Receiver) -> None:
    receiver.replies = [Reply(200, f"Webhook message delivery failed with error: {TEAMS_THROTTLED}")]
    sleeps = Sleeps()
    entry = post("teams", receiver.url(), b"{}", policy=FAST, sleep=sleeps, jitter=no_jitter)
    assert entry["status"] == "sent" and "after 2 attempts" in entry["detail"]
    assert sleeps == [1.0]
    assert len(receiver.requests) == 2


def test_400_is_not_retried(receiver: Receiver) -> None:
    receiver.default = Reply(400, "invalid_blocks")
    sleeps = Sleeps()
    entry = post("slack", receiver.url(), b"{}", policy=FAST, sleep=sleeps)
    assert entry == {
        "channel": "slack", "status": "failed", "detail": "HTTP 400: invalid_blocks (gave up after 1 attempt)"
    }
    assert len(receiver.requests) == 1 and sleeps == []


def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.default = Reply(302, "", {"Location": "http://127.0.0.1:9/elsewhere"})
    entry = post("webhook", receiver.url(), b"{}", policy=FAST, sleep=Sleeps())
    assert entry["status"] == "failed" and entry["detail"].startswith("HTTP 302")
    assert len(receiver.requests) == 1


def test_connection_refused_is_retried_and_reported_without_the_url() -> None:
    dead = Receiver()
    url = dead.url()
    dead.stop()
    sleeps = Sleeps()
    entry = post("teams", url, b"{}", policy=FAST, sleep=sleeps)
    assert entry["status"] == "failed" and entry["detail"].startswith("connection failed (ConnectionError)")
    assert len(sleeps) == FAST.max_attempts - 1
    assert_no_url(entry, url)


def test_retries_are_azure_cores_retry_policy(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    assert issubclass(delivery.WebhookRetryPolicy, CoreRetryPolicy)
    decided: list[bool] = []
    increment = delivery.WebhookRetryPolicy.increment

    def counted(self: delivery.WebhookRetryPolicy, *args: object, **kwargs: object) -> bool:
        decided.append(increment(self, *args, **kwargs))  # type: ignore[arg-type]
        return decided[-1]

    monkeypatch.setattr(delivery.WebhookRetryPolicy, "increment", counted)
    receiver.replies = [Reply(503, "busy"), Reply(429, "slow down")]
    entry = post("webhook", receiver.url(), b"{}", policy=FAST, sleep=Sleeps(), jitter=no_jitter)
    assert entry["status"] == "sent" and "after 3 attempts" in entry["detail"]
    assert decided == [True, True]  # each retry was the policy's decision


# --- secrets never leak ------------------------------------------------------------------------------


def test_no_url_or_secret_in_details_or_logs(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    url = receiver.url()
    # A receiver that echoes the URL and a known secret back in its error body.
    receiver.replies = [
        Reply(500, f"failed to post to {url}"),
        Reply(403, f"bad signature s3cr3t-SIGNATURE-value for {SECRET_PATH} with key topsecret-key"),
    ]
    with caplog.at_level(logging.DEBUG, logger="remediation"):
        entry = post("teams", url, b"{}", policy=FAST, sleep=Sleeps(), secrets=["topsecret-key"])
    assert entry["status"] == "failed" and entry["detail"].startswith("HTTP 403")
    assert_no_url(entry, url)
    assert "topsecret-key" not in entry["detail"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "retrying" in logged and "failed" in logged  # the retry and the failure were logged...
    for part in (url, "s3cr3t-SIGNATURE-value", "/workflows/0123abcd", "topsecret-key"):
        assert part not in logged  # ...without the URL or the secret


# --- Retry-After parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("Wed, 21 Oct 2026 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    now = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds(value, now=now) == expected
