"""The Notifier end to end: every channel against local receivers (HTTP, and HTTPS for Event Grid).

The Event Grid channel goes through the real ``azure-eventgrid`` publisher client to a trustme-signed
local TLS receiver, which records what the SDK sends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from remediation import demo
from remediation.notify import CHANNELS, Notifier, RetryPolicy, teams, webhook
from remediation.notify.eventgrid import SOURCE, cloud_event, event_type
from remediation.report import validate_report
from remediation.settings import Settings
from sandbox.tokens import SandboxCredential
from tests.http_receiver import Receiver, Reply
from tests.test_notify_delivery import Sleeps

POLICY = RetryPolicy(connect_timeout=1, read_timeout=2, max_attempts=3, budget=60)
WEBHOOK_SECRET = "whsec-0123456789abcdef"
TOPIC_KEY = "topic-key-abcdefghijklmnop"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return demo.run(None).reports[-1]


@pytest.fixture
def http() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def https() -> Iterator[Receiver]:
    r = Receiver(tls=True)
    yield r
    r.stop()


def settings_for(http: Receiver, https: Receiver | None = None, **extra: str) -> Settings:
    values = {
        "TEAMS_WEBHOOK_URL": http.url("teams"),
        "SLACK_WEBHOOK_URL": http.url("slack"),
        "WEBHOOK_URL": http.url("webhook"),
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        **extra,
    }
    if https is not None:
        values["EVENTGRID_TOPIC_ENDPOINT"] = f"{https.base}/api/events"
        values["EVENTGRID_TOPIC_KEY"] = TOPIC_KEY
    return Settings().with_overrides(values)


def by_channel(entries: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    assert [e["channel"] for e in entries] == list(CHANNELS)
    return {e["channel"]: e for e in entries}


def received(r: Receiver, channel: str) -> list[Any]:
    return [json.loads(q.body) for q in r.requests if q.path.startswith(f"/{channel}/")]


# --- every channel -------------------------------------------------------------------------------------


def test_send_reaches_every_configured_channel(report: dict[str, Any], http: Receiver, https: Receiver) -> None:
    settings = settings_for(http, https)
    notifier = Notifier(settings, sleep=Sleeps(), policy=POLICY, connection_verify=https.ca_bundle or True)
    entries = notifier.send(report)
    results = by_channel(entries)
    assert {c: e["status"] for c, e in results.items()} == dict.fromkeys(CHANNELS, "sent"), entries

    (card,) = received(http, "teams")
    assert card == teams.card(report)
    (message,) = received(http, "slack")
    assert message["blocks"][0]["type"] == "header"
    (posted,) = received(http, "webhook")
    assert posted == report

    # Nothing secret went out, nor into a detail, and the entries fit the report contract.
    everything = b"\n".join(q.body for q in http.requests + https.requests).decode()
    for secret in (*settings.secret_values(), "s3cr3t-SIGNATURE-value"):
        assert secret not in everything
        assert all(secret not in e["detail"] for e in entries)
    validate_report({**report, "notifications": entries})


def test_unconfigured_channels_are_disabled(report: dict[str, Any]) -> None:
    entries = Notifier(Settings()).send(report)
    assert entries == [{"channel": c, "status": "disabled", "detail": "not configured"} for c in CHANNELS]


def test_a_failing_channel_does_not_stop_the_others(report: dict[str, Any], http: Receiver) -> None:
    dead = Receiver()
    dead_url = dead.url("teams")
    dead.stop()
    slack = Receiver([Reply(400, "invalid_blocks")])  # its own receiver: the channels are sent at once
    settings = Settings().with_overrides(
        {"TEAMS_WEBHOOK_URL": dead_url, "SLACK_WEBHOOK_URL": slack.url("slack"), "WEBHOOK_URL": http.url("webhook")}
    )
    try:
        results = by_channel(Notifier(settings, sleep=Sleeps(), policy=POLICY).send(report))
    finally:
        slack.stop()
    assert results["teams"]["status"] == "failed" and "connection failed" in results["teams"]["detail"]
    assert results["slack"] == {
        "channel": "slack", "status": "failed", "detail": "HTTP 400: invalid_blocks (gave up after 1 attempt)"
    }
    assert results["webhook"]["status"] == "sent"
    assert results["eventgrid"]["status"] == "disabled"
    assert dead_url not in json.dumps(results)


def test_a_renderer_bug_is_recorded_not_raised(
    report: dict[str, Any], http: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_report: Any) -> dict[str, Any]:
        raise KeyError("boom")

    monkeypatch.setattr(teams, "card", broken)
    results = by_channel(Notifier(settings_for(http), sleep=Sleeps(), policy=POLICY).send(report))
    assert results["teams"] == {"channel": "teams", "status": "failed", "detail": "internal error (KeyError)"}
    assert results["slack"]["status"] == "sent" and results["webhook"]["status"] == "sent"


# --- generic webhook ---------------------------------------------------------------------------------


def test_webhook_body_is_signed_with_hmac(report: dict[str, Any], http: Receiver) -> None:
    before = int(time.time())
    Notifier(settings_for(http), sleep=Sleeps(), policy=POLICY).send(report)
    (request,) = [q for q in http.requests if q.path.startswith("/webhook/")]
    # What a receiver does: HMAC-SHA256 over the raw body, keyed with the shared secret.
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    signature = request.headers[webhook.SIGNATURE_HEADER.lower()]
    assert hmac.compare_digest(signature, expected)
    assert webhook.verify(request.body, signature, WEBHOOK_SECRET)
    assert not webhook.verify(request.body + b" ", signature, WEBHOOK_SECRET)
    assert not webhook.verify(request.body, signature, "another-secret")
    assert before <= int(request.headers[webhook.TIMESTAMP_HEADER.lower()]) <= int(time.time())
    assert json.loads(request.body) == report


def test_webhook_without_a_secret_is_unsigned(report: dict[str, Any]) -> None:
    body, headers = webhook.request(report, clock=lambda: 1_700_000_000.0)
    assert headers == {webhook.TIMESTAMP_HEADER: "1700000000"}
    assert json.loads(body) == report


# --- Event Grid ------------------------------------------------------------------------------------------


def test_eventgrid_cloudevent_is_received(
    report: dict[str, Any], https: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings().with_overrides(
        {"EVENTGRID_TOPIC_ENDPOINT": f"{https.base}/api/events", "EVENTGRID_TOPIC_KEY": TOPIC_KEY}
    )
    with caplog.at_level(logging.WARNING):
        results = by_channel(Notifier(settings, connection_verify=https.ca_bundle or True).send(report))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert results["eventgrid"]["status"] == "sent"
    assert "Contoso.AciAcrRemediation.Remediated" in results["eventgrid"]["detail"]
    (request,) = https.requests
    assert request.path.startswith("/api/events?api-version=")
    assert request.headers["aeg-sas-key"] == TOPIC_KEY
    assert request.headers["content-type"].startswith("application/cloudevents-batch+json")
    (event,) = json.loads(request.body)
    assert event["specversion"] == "1.0"
    assert event["source"] == SOURCE == "/aci-acr-remediation"
    assert event["type"] == "Contoso.AciAcrRemediation.Remediated"
    assert event["subject"] == report["resourceId"]
    assert event["id"] in results["eventgrid"]["detail"]
    data = event["data"]
    assert data["outcome"] == "remediated" and data["correlationId"] == report["correlationId"]
    assert data["causes"] == ["ACR_PULL_PERMISSION_MISSING"]
    assert [a["kind"] for a in data["actions"]] == [a["kind"] for a in report["actions"]]
    assert data["redeploy"] == {"status": "succeeded", "attempts": 1}
    assert TOPIC_KEY not in request.body.decode()


def test_eventgrid_with_a_token_credential(report: dict[str, Any], https: Receiver) -> None:
    settings = Settings().with_overrides({"EVENTGRID_TOPIC_ENDPOINT": f"{https.base}/api/events"})
    credential = SandboxCredential("33333333-3333-3333-3333-333333333333", "44444444-4444-4444-4444-444444444444")
    results = by_channel(
        Notifier(settings, credential=credential, connection_verify=https.ca_bundle or True).send(report)
    )
    assert results["eventgrid"]["status"] == "sent"
    (request,) = https.requests
    scheme, token = request.headers["authorization"].split(" ", 1)
    assert scheme == "Bearer" and "aeg-sas-key" not in request.headers
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["oid"] == "33333333-3333-3333-3333-333333333333"


def test_eventgrid_rejection_is_recorded(report: dict[str, Any], https: Receiver) -> None:
    https.default = Reply(401, json.dumps({"error": {"code": "Unauthorized", "message": "bad key"}}))
    settings = Settings().with_overrides(
        {"EVENTGRID_TOPIC_ENDPOINT": f"{https.base}/api/events", "EVENTGRID_TOPIC_KEY": "wrong-key-123"}
    )
    results = by_channel(Notifier(settings, connection_verify=https.ca_bundle or True).send(report))
    assert results["eventgrid"]["status"] == "failed"
    assert results["eventgrid"]["detail"].startswith("HTTP 401")
    assert "wrong-key-123" not in results["eventgrid"]["detail"]
    assert len(https.requests) == 1  # a 401 is not retried


def test_eventgrid_honours_the_read_timeout(report: dict[str, Any]) -> None:
    slow = Receiver(tls=True, default=Reply(200, "", delay=4.0))
    try:
        settings = Settings().with_overrides(
            {"EVENTGRID_TOPIC_ENDPOINT": f"{slow.base}/api/events", "EVENTGRID_TOPIC_KEY": TOPIC_KEY}
        )
        policy = RetryPolicy(connect_timeout=1, read_timeout=0.3, max_attempts=2, max_delay=0.1)
        started = time.monotonic()
        results = by_channel(Notifier(settings, policy=policy, connection_verify=slow.ca_bundle or True).send(report))
        elapsed = time.monotonic() - started
    finally:
        slow.stop()
    assert results["eventgrid"] == {
        "channel": "eventgrid", "status": "failed", "detail": "timed out (ServiceResponseTimeoutError)"
    }
    # azure-core does not retry a POST whose response timed out: the topic may have taken the event.
    assert len(slow.requests) == 1
    assert elapsed < 2.5  # bounded by the 0.3 s read timeout, far from the receiver's 4 s


def test_eventgrid_without_key_or_credential_fails_clearly(report: dict[str, Any]) -> None:
    settings = Settings().with_overrides({"EVENTGRID_TOPIC_ENDPOINT": "https://127.0.0.1:9/api/events"})
    results = by_channel(Notifier(settings).send(report))
    assert results["eventgrid"]["status"] == "failed"
    assert "EVENTGRID_TOPIC_KEY" in results["eventgrid"]["detail"]


@pytest.mark.parametrize(
    "outcome, expected",
    [
        ("remediated", "Remediated"),
        ("fixed-awaiting-redeploy", "FixedAwaitingRedeploy"),
        ("dry-run", "DryRun"),
        ("failed", "Failed"),
    ],
)
def test_event_types(outcome: str, expected: str, report: dict[str, Any]) -> None:
    assert event_type(outcome) == f"Contoso.AciAcrRemediation.{expected}"
    assert cloud_event({**report, "outcome": outcome}).type == f"Contoso.AciAcrRemediation.{expected}"


# --- noise control -------------------------------------------------------------------------------------


def test_cooldown_suppresses_every_configured_channel(report: dict[str, Any], http: Receiver) -> None:
    asked: list[tuple[str, str]] = []

    def cooldown(resource_id: str, outcome: str) -> bool:
        asked.append((resource_id, outcome))
        return False

    entries = Notifier(settings_for(http), sleep=Sleeps(), cooldown=cooldown).send(report)
    assert asked == [(report["resourceId"], report["outcome"])]
    results = by_channel(entries)
    for channel in ("teams", "slack", "webhook"):
        assert results[channel] == {"channel": channel, "status": "disabled", "detail": "suppressed by cool-down"}
    assert results["eventgrid"]["detail"] == "not configured"
    assert http.requests == []


def test_cooldown_that_allows_sends(report: dict[str, Any], http: Receiver) -> None:
    entries = Notifier(settings_for(http), sleep=Sleeps(), cooldown=lambda _rid, _outcome: True).send(report)
    assert [e["status"] for e in entries] == ["sent", "sent", "sent", "disabled"]


def test_storm_sends_grouped_summaries_to_chat(report: dict[str, Any], http: Receiver) -> None:
    runs = iter([10, 11, 12, 20, 21])
    notifier = Notifier(settings_for(http), sleep=Sleeps(), policy=POLICY, storm=lambda: next(runs), storm_threshold=10)
    statuses = []
    for _ in range(5):
        results = by_channel(notifier.send(report))
        statuses.append((results["teams"]["status"], results["slack"]["status"], results["webhook"]["status"]))
    assert statuses == [
        ("sent", "sent", "sent"),  # 10 runs: at the threshold, still per-resource cards
        ("sent", "sent", "sent"),  # 11: past it, one grouped summary
        ("disabled", "disabled", "sent"),  # 12..20: quiet in chat, machines still get every report
        ("disabled", "disabled", "sent"),
        ("sent", "sent", "sent"),  # 21: the next summary
    ]
    cards = received(http, "teams")
    assert len(cards[0]["attachments"][0]["content"]["body"]) > 1  # a full card
    (line,) = cards[1]["attachments"][0]["content"]["body"]
    assert "11 remediation runs in the current window" in line["text"]
    assert "21 remediation runs" in cards[2]["attachments"][0]["content"]["body"][0]["text"]
    slack_messages = received(http, "slack")
    assert "blocks" not in slack_messages[1] and "11 remediation runs" in slack_messages[1]["text"]
    assert len(received(http, "webhook")) == 5
    quiet = by_channel(
        Notifier(settings_for(http), sleep=Sleeps(), storm=lambda: 15, storm_threshold=10).send(report)
    )
    assert quiet["teams"]["detail"] == "suppressed by storm control (15 runs in the window)"


def test_broken_noise_controls_do_not_silence(report: dict[str, Any], http: Receiver) -> None:
    def broken() -> int:
        raise RuntimeError("table storage down")

    def broken_cooldown(_rid: str, _outcome: str) -> bool:
        raise RuntimeError("table storage down")

    entries = Notifier(settings_for(http), sleep=Sleeps(), storm=broken, cooldown=broken_cooldown).send(report)
    assert [e["status"] for e in entries] == ["sent", "sent", "sent", "disabled"]
