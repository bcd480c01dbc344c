"""Metrics: counted through OpenTelemetry, read back with the SDK's in-memory reader."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from remediation import telemetry
from remediation.azure.clients import AzureClients
from sandbox import Sandbox

from .worlds import RG, SUB, world

_reader = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    # The global provider can be set once per process; the module's meters are proxies that follow it.
    metrics.set_meter_provider(MeterProvider(metric_readers=[_reader]))


def points(name: str) -> list[tuple[dict[str, Any], float]]:
    data = _reader.get_metrics_data()
    out = []
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for p in metric.data.data_points:
                        out.append((dict(p.attributes or {}), getattr(p, "value", getattr(p, "count", 0))))
    return out


def test_runs_causes_and_notification_failures_are_counted() -> None:
    report = {"outcome": "remediated", "trigger": "eventgrid", "finishedAt": "2026-11-25T10:00:30+00:00",
              "causes": [{"code": "ACR_PULL_PERMISSION_MISSING"}, {"code": "ACR_TRUSTED_SERVICES_DISABLED"}],
              "notifications": [{"channel": "teams", "status": "failed"}, {"channel": "slack", "status": "sent"}]}
    telemetry.record_report(report, event_time="2026-11-25T10:00:00.0000000Z")
    runs = points("remediation.runs")
    assert ({"outcome": "remediated", "trigger": "eventgrid"}, 1) in runs
    codes = {p[0]["code"] for p in points("remediation.causes")}
    assert codes == {"ACR_PULL_PERMISSION_MISSING", "ACR_TRUSTED_SERVICES_DISABLED"}
    assert points("remediation.notifications.failed") == [({"channel": "teams"}, 1)]
    [(_, count)] = points("remediation.time_to_healthy")
    assert count == 1


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
