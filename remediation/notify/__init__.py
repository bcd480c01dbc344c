"""Telling people (Teams, Slack) and systems (a webhook, Event Grid) what a remediation did.

``Notifier(settings).send(report)`` posts the report to every configured channel and returns one
entry per channel for the report's ``notifications``: ``{"channel", "status": "sent" | "failed" |
"disabled", "detail"}``. It never raises; a failing channel is recorded and the others still go.

- ``teams``: :func:`teams.card`, an Adaptive Card in the Workflows envelope, to TEAMS_WEBHOOK_URL.
- ``slack``: :func:`slack.message`, Block Kit, to SLACK_WEBHOOK_URL.
- ``webhook``: the report JSON, HMAC-signed with WEBHOOK_SECRET (:mod:`.webhook`), to WEBHOOK_URL.
- ``eventgrid``: a CloudEvent (:mod:`.eventgrid`) to EVENTGRID_TOPIC_ENDPOINT.

All channels are sent at once and share one wall-clock deadline (``deadline``, 60 s by default):
a channel that has not finished by then is recorded ``failed`` ("no answer within the deadline"),
and its retries stop at the deadline too, so one slow webhook holds up neither the other channels
nor the run (the service stores the report before it notifies).

Noise control, both optional and supplied by the caller (which owns the state):

- ``cooldown(resource_id, outcome) -> bool``: True when a notification of this outcome about this
  resource may go now (the caller keeps one cool-down per outcome, so a report that needs a person
  is never held back by another outcome's message). When it says False, every configured channel
  is recorded ``disabled`` / "suppressed by cool-down".
- ``storm() -> int``: how many runs the current window has seen (this one included). Above
  ``storm_threshold``, Teams and Slack get a grouped one-line summary instead of a card, once on
  passing the threshold and again every ``storm_threshold`` runs; in between they are recorded
  ``disabled`` / "suppressed by storm control". The webhook and Event Grid, read by machines,
  still get every report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any

import requests
from azure.core.credentials import TokenCredential

from remediation.notify import delivery, eventgrid, slack, teams, webhook
from remediation.notify.delivery import DEFAULT_POLICY, RetryPolicy, Sleep
from remediation.notify.summary import encode_json, storm_line
from remediation.settings import Settings

__all__ = ["CHANNELS", "Notifier", "RetryPolicy", "delivery", "eventgrid", "slack", "teams", "webhook"]

log = logging.getLogger(__name__)

CHANNELS = ("teams", "slack", "webhook", "eventgrid")
CHAT_CHANNELS = ("teams", "slack")
COOL_DOWN = "suppressed by cool-down"
DEFAULT_DEADLINE_SECONDS = 60.0
"""How long all channels of one report may take together."""


class Notifier:
    """Sends reports to the channels ``settings`` configure (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        credential: TokenCredential | None = None,
        sleep: Sleep = time.sleep,
        cooldown: Callable[[str, str], bool] | None = None,
        storm: Callable[[], int] | None = None,
        storm_threshold: int = 10,
        policy: RetryPolicy = DEFAULT_POLICY,
        connection_verify: bool | str = True,
        session: requests.Session | None = None,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        """``credential`` publishes to Event Grid when no topic key is set; ``sleep`` is the retry
        wait (injectable for tests); ``connection_verify`` is passed to the Event Grid client;
        ``deadline`` is the seconds all channels of one report may take together."""
        self._settings = settings
        self._credential = credential
        self._sleep = sleep
        self._cooldown = cooldown
        self._storm = storm
        self._storm_threshold = max(storm_threshold, 1)
        self._policy = policy
        self._verify = connection_verify
        self._session = session
        self._deadline = deadline
        self._secrets = settings.secret_values()

    def configured(self) -> dict[str, bool]:
        s = self._settings
        return {
            "teams": bool(s.teams_webhook_url),
            "slack": bool(s.slack_webhook_url),
            "webhook": bool(s.webhook_url),
            "eventgrid": bool(s.eventgrid_topic_endpoint),
        }

    def send(self, report: Mapping[str, Any]) -> list[dict[str, str]]:
        """Post ``report`` everywhere configured; one entry per channel, in :data:`CHANNELS` order."""
        configured = self.configured()
        if not any(configured.values()):
            return [_disabled(channel, "not configured") for channel in CHANNELS]
        if not self._may_notify(str(report.get("resourceId") or ""), str(report.get("outcome") or "")):
            return [_disabled(c, COOL_DOWN if configured[c] else "not configured") for c in CHANNELS]
        runs = self._runs()
        due = [channel for channel in CHANNELS if configured[channel]]
        # no retry of any channel may outlast the deadline, nor any single wait for an answer
        policy = replace(self._policy, budget=min(self._policy.budget, self._deadline),
                         read_timeout=min(self._policy.read_timeout, self._deadline))
        # the pool is not joined: a channel still waiting at the deadline finishes on its own
        pool = ThreadPoolExecutor(max_workers=len(due), thread_name_prefix="notify")
        try:
            sending = {channel: pool.submit(self._send_one, channel, report, runs, policy) for channel in due}
            wait(sending.values(), timeout=self._deadline)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return [self._result(channel, sending[channel]) if channel in sending else _disabled(channel, "not configured")
                for channel in CHANNELS]

    def _result(self, channel: str, sent: Future[dict[str, str]]) -> dict[str, str]:
        if not sent.done():
            log.error("notification %s had no answer within the deadline of %g s", channel, self._deadline)
            return {"channel": channel, "status": "failed",
                    "detail": f"no answer within the notification deadline of {self._deadline:g} s"}
        exc = sent.exception()
        if exc is not None:
            log.error("notification %s could not be sent: %s", channel, type(exc).__name__, exc_info=exc)
            return {"channel": channel, "status": "failed", "detail": f"internal error ({type(exc).__name__})"}
        return sent.result()

    def _send_one(self, channel: str, report: Mapping[str, Any], runs: int, policy: RetryPolicy) -> dict[str, str]:
        s = self._settings
        if channel == "eventgrid":
            return eventgrid.publish(
                report,
                endpoint=s.eventgrid_topic_endpoint,
                key=s.eventgrid_topic_key,
                credential=self._credential,
                policy=policy,
                connection_verify=self._verify,
            )
        if channel == "webhook":
            body, headers = webhook.request(report, secret=s.webhook_secret)
            return self._post(channel, s.webhook_url, body, headers, policy)
        storming = runs > self._storm_threshold
        if storming and (runs - self._storm_threshold - 1) % self._storm_threshold:
            return _disabled(channel, f"suppressed by storm control ({runs} runs in the window)")
        if channel == "teams":
            payload = teams.storm_card(storm_line(report, runs)) if storming else teams.card(report)
            return self._post(channel, s.teams_webhook_url, encode_json(payload), {}, policy)
        payload = slack.storm_message(storm_line(report, runs)) if storming else slack.message(report)
        return self._post(channel, s.slack_webhook_url, encode_json(payload), {}, policy)

    def _post(self, channel: str, url: str, body: bytes, headers: dict[str, str],
              policy: RetryPolicy) -> dict[str, str]:
        return delivery.post(
            channel,
            url,
            body,
            headers=headers,
            policy=policy,
            sleep=self._sleep,
            session=self._session,
            secrets=self._secrets,
        )

    def _may_notify(self, resource_id: str, outcome: str) -> bool:
        if self._cooldown is None:
            return True
        try:
            return bool(self._cooldown(resource_id, outcome))
        except Exception:
            log.warning("cool-down check failed; notifying anyway", exc_info=True)
            return True

    def _runs(self) -> int:
        if self._storm is None:
            return 0
        try:
            return int(self._storm())
        except Exception:
            log.warning("storm counter failed; sending per-resource cards", exc_info=True)
            return 0


def _disabled(channel: str, detail: str) -> dict[str, str]:
    return {"channel": channel, "status": "disabled", "detail": detail}
