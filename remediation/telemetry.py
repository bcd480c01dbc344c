"""Metrics through OpenTelemetry: exported to Application Insights by the Azure Monitor exporter
when a connection string is set (``APPLICATIONINSIGHTS_CONNECTION_STRING``), recorded nowhere
otherwise. Logs are not exported here: the Functions host already sends them.

What is counted: remediations by outcome and by cause, time from the failed write to a healthy
group, ARM calls and the throttling seen, notification failures, jobs the queue gave up on. Every
record carries no secret: only outcomes, cause codes, channel names and HTTP status classes.

Where it lands: the exporter sends each metric point as a ``MetricData`` item, which Application
Insights stores in ``customMetrics`` (``AppMetrics`` in the Log Analytics workspace) under the
instrument's name, with its attributes as ``customDimensions``. ``infra/workbook.json`` and the
alert rules in ``infra/modules/monitoring.bicep`` query exactly these names;
``tests/test_monitoring.py`` fails when one of them is renamed here, and wants a workbook tile for
every metric its scenario makes the app emit (a new metric: add a tile, and make the scenario
produce it).

Log records reach Application Insights (``traces``) through the Functions host with their message
text only: the Python worker forwards a record's message, level and logger name, not its
``extra`` fields. So the one record per finished run (:func:`record_report`) says in its message
what the workbook lists: outcome, report id and resource.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy
from opentelemetry import metrics

log = logging.getLogger(__name__)
_meter = metrics.get_meter("aci-acr-remediation", "0.1.0")
remediations = _meter.create_counter("remediation.runs", description="Remediation runs, by outcome and trigger")
causes = _meter.create_counter("remediation.causes", description="Causes found, by cause code and the run's outcome")
time_to_healthy = _meter.create_histogram(
    "remediation.time_to_healthy", unit="s", description="From the failed write's event to a verified redeploy")
arm_calls = _meter.create_counter("remediation.arm.calls", description="Azure calls made, by status class")
arm_throttled = _meter.create_counter("remediation.arm.throttled", description="Azure answers 429 (throttling)")
notification_failures = _meter.create_counter(
    "remediation.notifications.failed", description="Summaries that could not be delivered, by channel")
poisoned_jobs = _meter.create_counter(
    "remediation.jobs.poisoned", description="Remediation jobs the queue gave up on (moved to the poison queue)")

FINISHED = "remediation finished: outcome=%s report=%s resource=%s"
"""The message of the one log record per finished run (the workbook parses it from ``traces``)."""

_configured = False
_lock = threading.Lock()


def configure(env: Mapping[str, str]) -> bool:
    """Export the metrics to Application Insights when a connection string is set; once.

    Only metrics: the Python worker already forwards every ``logging`` record to the Functions
    host, which sends it to Application Insights, so exporting logs here too would store each twice.
    """
    global _configured
    connection = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "")
    with _lock:
        if _configured or not connection:
            return _configured
        from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(AzureMonitorMetricExporter(connection_string=connection))
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _configured = True
        return True


def record_report(report: Mapping[str, Any], *, event_time: str | None = None) -> None:
    """Count one finished (stored) run, and log it as one :data:`FINISHED` record."""
    outcome = str(report.get("outcome", ""))
    log.info(FINISHED, outcome, report.get("id", ""), report.get("resourceId", ""),
             extra={"resourceId": report.get("resourceId"), "outcome": outcome,
                    "correlationId": report.get("correlationId"), "reportId": report.get("id")})
    remediations.add(1, {"outcome": outcome, "trigger": str(report.get("trigger", ""))})
    for cause in report.get("causes") or []:
        causes.add(1, {"code": str(cause.get("code", "")), "outcome": outcome})
    for note in report.get("notifications") or []:
        if note.get("status") == "failed":
            notification_failures.add(1, {"channel": str(note.get("channel", ""))})
    finished = report.get("finishedAt")
    if outcome == "remediated" and event_time and isinstance(finished, str):
        try:
            start = datetime.fromisoformat(event_time.replace("Z", "+00:00")[:26] + "+00:00"
                                           if "." in event_time else event_time.replace("Z", "+00:00"))
            seconds = (datetime.fromisoformat(finished) - start).total_seconds()
        except ValueError:
            return
        if seconds >= 0:
            time_to_healthy.record(seconds)


def record_poisoned() -> None:
    """Count one message arriving on the poison queue, readable or not."""
    poisoned_jobs.add(1)


class ArmCallCounter(SansIOHTTPPolicy[Any, Any]):
    """Counts every attempt the SDK makes (retries included), so throttling is visible."""

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        status = response.http_response.status_code
        arm_calls.add(1, {"status_class": f"{status // 100}xx"})
        if status == 429:
            arm_throttled.add(1)
