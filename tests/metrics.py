"""The app's metrics as the tests read them: one in-memory reader for the whole test process.

OpenTelemetry lets the global meter provider be set once per process, and the app's instruments
(``remediation.telemetry``) are proxies that follow it; every test module that reads metrics
shares this reader, whichever module installs it first.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData

READER = InMemoryMetricReader()
_provider = MeterProvider(metric_readers=[READER])


def install() -> None:
    """Make the reader's provider the global one (idempotent)."""
    if metrics.get_meter_provider() is not _provider:
        metrics.set_meter_provider(_provider)
    assert metrics.get_meter_provider() is _provider, "another meter provider was installed first"


def collect() -> MetricsData | None:
    """What the app recorded since the last collection (cumulative points for each instrument)."""
    return READER.get_metrics_data()


def points(name: str, data: MetricsData | None = None) -> list[tuple[dict[str, Any], float]]:
    """``(attributes, value)`` of each point of metric ``name`` (a histogram's value is its count)."""
    data = collect() if data is None else data
    out = []
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for p in metric.data.data_points:
                        out.append((dict(p.attributes or {}), getattr(p, "value", getattr(p, "count", 0))))
    return out
