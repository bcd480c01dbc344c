"""Metrics: counted through OpenTelemetry, read back with the SDK's in-memory reader."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from remediation import telemetry
from remediation.azure.clients import AzureClients
from sandbox import Sandbox

from .metrics import install, points
from .worlds import RG, SUB, world


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    install()


def _totals(name: str) -> dict[tuple[tuple[str, Any], ...], float]:
    return {tuple(sorted(a.items())): v for a, v in points(name)}


def _added(before: dict[tuple[tuple[str, Any], ...], float], name: str) -> dict[tuple[tuple[str, Any], ...], float]:
    """What was recorded for ``name`` since ``before`` (points are cumulative; other tests share them)."""
    return {k: v - before.get(k, 0) for k, v in _totals(name).items() if v != before.get(k, 0)}


def test_runs_causes_and_notification_failures_are_counted() -> None:
    report = {"outcome": "remediated", "trigger": "eventgrid", "finishedAt": "2026-11-25T10:00:30+00:00",
              "causes": [{"code": "ACR_PULL_PERMISSION_MISSING"}, {"code": "ACR_TRUSTED_SERVICES_DISABLED"}],
              "notifications": [{"channel": "teams", "status": "failed"}, {"channel": "slack", "status": "sent"}]}
    names = ["remediation.runs", "remediation.causes", "remediation.notifications.failed",
             "remediation.time_to_healthy"]
    before = {name: _totals(name) for name in names}
    telemetry.record_report(report, event_time="2026-11-25T10:00:00.0000000Z")
    assert _added(before["remediation.runs"], "remediation.runs") == {
        (("outcome", "remediated"), ("trigger", "eventgrid")): 1}
    assert _added(before["remediation.causes"], "remediation.causes") == {
        (("code", "ACR_PULL_PERMISSION_MISSING"), ("outcome", "remediated")): 1,
        (("code", "ACR_TRUSTED_SERVICES_DISABLED"), ("outcome", "remediated")): 1}
    assert _added(before["remediation.notifications.failed"], "remediation.notifications.failed") == {
        (("channel", "teams"),): 1}
    assert _added(before["remediation.time_to_healthy"], "remediation.time_to_healthy") == {(): 1}


def test_each_finished_run_is_one_log_record_whose_message_names_outcome_report_and_resource(
        caplog: pytest.LogCaptureFixture) -> None:
    report = {"id": "r-1", "outcome": "failed", "trigger": "replay", "resourceId": "/subscriptions/s/x",
              "correlationId": "c-1"}
    with caplog.at_level(logging.INFO, logger="remediation"):
        telemetry.record_report(report)
    [record] = [r for r in caplog.records if r.name == "remediation.telemetry"]
    # Application Insights receives only the message text (the worker drops ``extra``): it must say it all
    assert record.getMessage() == "remediation finished: outcome=failed report=r-1 resource=/subscriptions/s/x"
    assert vars(record)["correlationId"] == "c-1"


def test_poison_queue_arrivals_are_counted() -> None:
    before = sum(v for _, v in points("remediation.jobs.poisoned"))
    telemetry.record_poisoned()
    assert sum(v for _, v in points("remediation.jobs.poisoned")) == before + 1


def test_arm_calls_and_throttling_are_counted_per_attempt() -> None:
    fault = {"match": "GET */userAssignedIdentities/*", "status": 429, "retryAfter": 0, "times": 1}
    with Sandbox(world(behaviour={"faults": [fault]})) as sb:
        clients = AzureClients(sb.credential(), arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle)
        before = sum(v for _, v in points("remediation.arm.throttled"))
        clients.identities(SUB).user_assigned_identities.get(RG, "myACRId")
        clients.close()
    assert sum(v for _, v in points("remediation.arm.throttled")) == before + 1
    assert any(a == {"status_class": "2xx"} and v >= 1 for a, v in points("remediation.arm.calls"))


def test_without_a_connection_string_nothing_is_exported() -> None:
    assert telemetry.configure({}) is False
