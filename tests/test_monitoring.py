"""The workbook and the alert rules ask only for what the app really sends to Application Insights.

What the app sends is not listed here: a scenario runs through the function app (the genuine
worker, the sandbox, Azurite) until every figure has been produced (a remediation, a throttled
ARM call, a notification that fails, a job on the poison queue), and its metric points are turned
into Application Insights items by the Azure Monitor exporter's own conversion. Those items give
the metric names and the ``customDimensions`` keys; the log records give the ``traces`` messages.
Every KQL query of ``infra/workbook.json`` and of the log alerts in ``infra/modules/monitoring.bicep``
is then checked against them, so renaming a metric or a dimension in ``remediation/telemetry.py``
fails here.

The Bicep is read as text (no Bicep compiler ships outside NuGet); where ``pycep-parser`` is
installed, every file written for monitoring must parse with it too.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.monitor.opentelemetry.exporter.export.metrics._exporter import _convert_point_to_envelope

from remediation.report import report_schema

from .app import World
from .http_receiver import Receiver, Reply
from .metrics import collect, install

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
WORKBOOK = INFRA / "workbook.json"
MONITORING = INFRA / "modules" / "monitoring.bicep"
DELIVERY_ALERTS = INFRA / "modules" / "event-delivery-alerts.bicep"
MAIN = INFRA / "main.bicep"

# Which Application Insights table holds an item of each exporter data type, when queried in the
# component's context (classic names; the workspace calls them AppMetrics and AppTraces):
# MicrosoftDocs/azure-docs, articles/azure-monitor/app/convert-classic-resource.md, "Table structure".
TABLE_OF_BASE_TYPE = {"MetricData": "customMetrics", "MessageData": "traces"}
# customMetrics columns and the data point field each is filled from (same document, AppMetrics schema).
VALUE_COLUMNS = {"valueSum": "value", "valueCount": "count", "valueMin": "min", "valueMax": "max"}
# Metrics of Microsoft.EventGrid/systemTopics, with their documented aggregation:
# MicrosoftDocs/azure-reference-other,
# azure-monitor-ref/supported-metrics/includes/Microsoft-EventGrid-systemTopics-metrics-include.md
SYSTEM_TOPIC_METRICS = {"AdvancedFilterEvaluationCount": "Total", "DeadLetteredCount": "Total",
                        "DeliveryAttemptFailCount": "Total", "DeliverySuccessCount": "Total",
                        "DestinationProcessingDurationInMs": "Average", "DroppedEventCount": "Total",
                        "MatchedEventCount": "Total", "PublishFailCount": "Total", "PublishSuccessCount": "Total",
                        "PublishSuccessLatencyInMs": "Total", "ServerDeliverySuccessRate": "Total",
                        "UnmatchedEventCount": "Total"}


OUTCOMES = set(report_schema()["$defs"]["outcome"]["enum"])


# --- what the app emits ---------------------------------------------------------------------------------


@dataclass
class Emitted:
    """The Application Insights items one scenario produced."""

    tables: set[str] = field(default_factory=set)
    metrics: dict[str, list[Any]] = field(default_factory=dict)
    """metric name -> its MetricDataPoint items (name, value, count, min, max)"""
    dimensions: dict[str, set[str]] = field(default_factory=dict)
    """metric name -> the customDimensions keys its items carry"""
    messages: list[str] = field(default_factory=list)
    """the messages of the app's log records (what ``traces.message`` holds)"""
    reports: list[dict[str, Any]] = field(default_factory=list)


def _amount(point: Any) -> float:
    return float(getattr(point, "value", getattr(point, "count", 0)))


def _totals(data: Any) -> dict[tuple[str, frozenset[tuple[str, Any]]], float]:
    """(metric, attributes) -> running total; the reader's points are cumulative."""
    return {(metric.name, frozenset((point.attributes or {}).items())): _amount(point)
            for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics
            for metric in sm.metrics for point in metric.data.data_points}


def _items(data: Any, before: dict[tuple[str, frozenset[tuple[str, Any]]], float]) -> Iterator[Any]:
    """Each metric point recorded since ``before``, as the exporter sends it: an Application
    Insights telemetry item. Other tests in this process record into the same reader, so only
    what grew counts."""
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    if _amount(point) > before.get((metric.name, frozenset((point.attributes or {}).items())), 0):
                        yield _convert_point_to_envelope(point, metric.name, rm.resource, sm.scope)


@pytest.fixture(scope="module", autouse=True)
def _reader() -> None:
    install()


@pytest.fixture
def emitted(world: World, caplog: pytest.LogCaptureFixture) -> Emitted:
    """Run a scenario that produces every figure the app records, and read back what it produced."""
    from tests.test_function_app import with_settings

    before = _totals(collect())
    receiver = Receiver(default=Reply(status=400, body="no"))  # refused at once: the notification fails
    try:
        service = with_settings(world, {"WEBHOOK_URL": f"{receiver.base}/hook"})
        # one throttled answer on the first ARM read, retried by the SDK
        world.sb.world.behaviour["faults"] = [{"match": "GET *", "status": 429, "retryAfter": 0, "times": 1}]
        with caplog.at_level(logging.INFO, logger="remediation"):
            event = world.fail()
            message = world.deliver(event).output("jobs")
            assert [r.ok for r in world.drain()] == [True]
            world.poison.send_message(message)  # the job once more, as the queue would after giving up
            assert [p.ok for p in world.drain_poison()] == [True]
        out = Emitted(reports=service.ledger.reports_for(event["subject"]))
    finally:
        receiver.stop()
    data = collect()
    assert data is not None
    for item in _items(data, before):
        out.tables.add(TABLE_OF_BASE_TYPE[item.data.base_type])
        for point in item.data.base_data.metrics:
            out.metrics.setdefault(point.name, []).append(point)
            out.dimensions.setdefault(point.name, set()).update(item.data.base_data.properties or {})
    out.messages = [r.getMessage() for r in caplog.records if r.name.startswith("remediation")]
    if out.messages:  # the worker forwards these records to the host, which writes them to traces
        out.tables.add(TABLE_OF_BASE_TYPE["MessageData"])
    return out


# --- reading the queries -----------------------------------------------------------------------------------


def _workbook() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(WORKBOOK.read_text(encoding="utf-8"))
    return data


def _workbook_queries() -> dict[str, str]:
    return {item["name"]: item["content"]["query"] for item in _workbook()["items"] if item["type"] == 3}


def _bicep(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _resource_blocks(text: str, resource_type: str) -> dict[str, str]:
    """Symbol -> text of each ``resource`` of ``resource_type``, up to the next top-level declaration."""
    starts = [m for m in re.finditer(r"^(resource|module|output|param|var)\s+(\w+)\s+'?([^'\s]*)", text, re.MULTILINE)]
    blocks = {}
    for i, match in enumerate(starts):
        if match.group(1) == "resource" and match.group(3).split("@")[0] == resource_type:
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            blocks[match.group(2)] = text[match.start():end]
    return blocks


def _value(block: str, key: str) -> str:
    [value] = re.findall(rf"^\s*'?{re.escape(key)}'?:\s*(.+?)\s*$", block, re.MULTILINE)
    return value


def _alert_queries() -> dict[str, tuple[str, str]]:
    """Log alert symbol -> (its KQL query, its metricMeasureColumn)."""
    out = {}
    for symbol, block in _resource_blocks(_bicep(MONITORING), "Microsoft.Insights/scheduledQueryRules").items():
        [query] = re.findall(r"query:\s*'''\n(.*?)'''", block, re.DOTALL)
        out[symbol] = (query.strip(), _value(block, "metricMeasureColumn").strip("'"))
    return out


def _all_queries() -> dict[str, str]:
    return {**{f"workbook {k}": v for k, v in _workbook_queries().items()},
            **{f"alert {k}": q for k, (q, _) in _alert_queries().items()}}


def _table(query: str) -> str:
    return query.split("\n", 1)[0].strip()


def _metric_names(query: str) -> set[str]:
    names = set(re.findall(r'\bname\s*==\s*"([^"]+)"', query))
    for group in re.findall(r"\bname\s+in\s*\(([^)]*)\)", query):
        names.update(re.findall(r'"([^"]+)"', group))
    return names


def _dimension_keys(query: str) -> set[str]:
    return set(re.findall(r"\bcustomDimensions\.(\w+)", query)) | set(
        re.findall(r"""\bcustomDimensions\[['"]([^'"]+)['"]\]""", query))


def _parse_pattern(query: str) -> re.Pattern[str]:
    """A KQL ``parse message with "const" column "const" column ...`` as a regular expression."""
    [spec] = re.findall(r"\|\s*parse\s+message\s+with\s+(.+)", query)
    parts = re.findall(r'"([^"]*)"|(\w+)', spec)
    regex = "".join(re.escape(text) if text else f"(?P<{column}>.*?)" for text, column in parts)
    return re.compile(f"^{regex}$")


# --- the workbook --------------------------------------------------------------------------------------------


def test_the_workbook_is_a_notebook_of_log_queries_on_the_application_insights_component() -> None:
    workbook = _workbook()
    assert workbook["version"] == "Notebook/1.0"
    names = [item["name"] for item in workbook["items"]]
    assert len(names) == len(set(names))
    queries = [item for item in workbook["items"] if item["type"] == 3]
    assert queries
    for item in queries:
        content = item["content"]
        assert content["version"] == "KqlItem/1.0" and content["queryType"] == 0  # 0: logs (KQL)
        assert content["resourceType"] == "microsoft.insights/components"
        assert content["timeContextFromParameter"] == "TimeRange"
    [params] = [item for item in workbook["items"] if item["type"] == 9]
    assert [p["name"] for p in params["content"]["parameters"]] == ["TimeRange"]
    assert "fallbackResourceIds" not in workbook  # monitoring.bicep adds the deployed component's id


def test_every_query_names_only_tables_metrics_and_dimensions_the_app_emits(emitted: Emitted) -> None:
    assert emitted.tables == {"customMetrics", "traces"}
    for label, query in _all_queries().items():
        table = _table(query)
        assert table in emitted.tables, f"{label}: table {table} gets nothing from the app"
        if table != "customMetrics":
            assert "customDimensions" not in query, f"{label}: the app's log records carry no dimensions there"
            continue
        names = _metric_names(query)
        assert names, f"{label}: a customMetrics query must say which metric"
        unknown = names - set(emitted.metrics)
        assert not unknown, f"{label}: the app emits no metric {sorted(unknown)}"
        known_keys = set().union(*(emitted.dimensions[n] for n in names))
        missing = _dimension_keys(query) - known_keys
        assert not missing, f"{label}: {sorted(names)} carry no customDimensions {sorted(missing)}"
        for column, point_field in VALUE_COLUMNS.items():
            if re.search(rf"\b{column}\b", query):
                assert all(getattr(p, point_field) is not None for n in names for p in emitted.metrics[n]), \
                    f"{label}: {column} is empty for {sorted(names)}"


def test_the_workbook_shows_every_metric_the_app_emits(emitted: Emitted) -> None:
    shown = set().union(*(_metric_names(q) for q in _workbook_queries().values()))
    assert set(emitted.metrics) <= shown
    assert {"remediation.runs", "remediation.causes", "remediation.time_to_healthy", "remediation.arm.throttled",
            "remediation.notifications.failed", "remediation.jobs.poisoned"} <= set(emitted.metrics)


def test_the_runs_list_parses_the_apps_own_finished_records(emitted: Emitted) -> None:
    [query] = [q for q in _workbook_queries().values() if _table(q) == "traces"]
    [prefix] = re.findall(r'message\s+startswith\s+"([^"]+)"', query)
    finished = [m for m in emitted.messages if m.startswith(prefix)]
    assert len(finished) == len(emitted.reports) >= 1  # one record per stored report
    pattern = _parse_pattern(query)
    parsed = [pattern.fullmatch(m) for m in finished]
    assert all(parsed), finished
    by_id = {r["id"]: r for r in emitted.reports}
    for match in parsed:
        assert match is not None
        report = by_id[match["reportId"]]
        assert (match["outcome"], match["resourceId"]) == (report["outcome"], report["resourceId"])
    [wanted] = re.findall(r"\bwhere\s+outcome\s+in\s*\(([^)]*)\)", query)
    assert set(re.findall(r'"([^"]+)"', wanted)) <= OUTCOMES


def test_a_renamed_metric_is_caught(emitted: Emitted) -> None:
    """The check above is only as good as its failure: a metric renamed in the app leaves the
    workbook asking for a name nothing emits."""
    runs = emitted.metrics.pop("remediation.runs")
    emitted.metrics["remediation.run_count"] = runs
    emitted.dimensions["remediation.run_count"] = emitted.dimensions.pop("remediation.runs")
    with pytest.raises(AssertionError, match="emits no metric"):
        test_every_query_names_only_tables_metrics_and_dimensions_the_app_emits(emitted)


# --- the alert rules ---------------------------------------------------------------------------------------


def test_log_alerts_fire_on_failed_runs_and_poison_queue_arrivals_of_the_component() -> None:
    text = _bicep(MONITORING)
    alerts = _alert_queries()
    queries = {symbol: query for symbol, (query, _) in alerts.items()}
    assert _metric_names(queries["failedRunsAlert"]) == {"remediation.runs"}
    assert re.search(r'tostring\(customDimensions\.outcome\)\s*==\s*"failed"', queries["failedRunsAlert"])
    assert "failed" in OUTCOMES
    assert _metric_names(queries["poisonedJobsAlert"]) == {"remediation.jobs.poisoned"}
    for symbol, block in _resource_blocks(text, "Microsoft.Insights/scheduledQueryRules").items():
        query, measure = alerts[symbol]
        # the counters arrive as deltas: the window's total of valueSum is how many happened
        assert measure == "valueSum" and not re.search(r"\|\s*(summarize|project)\b", query)
        assert _value(block, "timeAggregation") == "'Total'"
        assert _value(block, "operator") == "'GreaterThan'" and _value(block, "threshold") == "0"
        assert _value(block, "kind") == "'LogAlert'"
        assert re.search(r"scopes:\s*\[\s*appInsightsId\s*\]", block)
        assert _value(block, "actionGroups") == "actionGroupIds"


def test_the_metric_alerts_watch_dead_lettered_and_dropped_events_of_each_system_topic() -> None:
    text = _bicep(DELIVERY_ALERTS)
    blocks = _resource_blocks(text, "Microsoft.Insights/metricAlerts")
    metrics = {}
    for block in blocks.values():
        name = _value(block, "metricName").strip("'")
        metrics[name] = block
        assert name in SYSTEM_TOPIC_METRICS
        assert _value(block, "timeAggregation").strip("'") == SYSTEM_TOPIC_METRICS[name]
        assert _value(block, "metricNamespace") == _value(block, "targetResourceType") == \
            "'Microsoft.EventGrid/systemTopics'"
        assert re.search(r"scopes:\s*\[\s*systemTopicId\s*\]", block)
        assert _value(block, "operator") == "'GreaterThan'" and _value(block, "threshold") == "0"
        assert re.search(r"actions:\s*\[for id in actionGroupIds:\s*\{\s*actionGroupId:\s*id\s*\}\]", block)
    assert set(metrics) == {"DeadLetteredCount", "DroppedEventCount"}


# --- the wiring ----------------------------------------------------------------------------------------------


def test_main_deploys_the_workbook_on_the_apps_component_and_the_alerts_beside_every_system_topic() -> None:
    main = _bicep(MAIN)
    app = _bicep(INFRA / "modules" / "app.bicep")
    assert re.search(r"^output appInsightsId string = appInsights\.id$", app, re.MULTILINE)
    monitoring = re.search(r"^module monitoring 'modules/monitoring\.bicep' = \{(.*?)^\}", main,
                           re.MULTILINE | re.DOTALL)
    assert monitoring and "appInsightsId: app.outputs.appInsightsId" in monitoring.group(1)
    assert "scope: appResourceGroup" in monitoring.group(1)
    alerts = re.search(r"^module deliveryAlerts 'modules/event-delivery-alerts\.bicep' = "
                       r"\[for \(targetSubscriptionId, i\) in targetSubscriptionIds: \{(.*?)^\}\]", main,
                       re.MULTILINE | re.DOTALL)
    assert alerts, "one set of delivery alerts per target subscription"
    body = alerts.group(1)
    assert "scope: resourceGroup(targetSubscriptionId, eventsResourceGroupName)" in body
    assert "systemTopicId: targets[i].outputs.systemTopicId" in body
    assert "actionGroupIds: monitoring.outputs.actionGroupIds" in body
    target = _bicep(INFRA / "modules" / "target-subscription.bicep")
    assert re.search(r"^output systemTopicId string = events\.outputs\.systemTopicId$", target, re.MULTILINE)


def test_the_workbook_resource_loads_the_workbook_json_and_shares_it_on_the_component() -> None:
    [block] = _resource_blocks(_bicep(MONITORING), "Microsoft.Insights/workbooks").values()
    assert _value(block, "kind") == "'shared'" and _value(block, "category") == "'workbook'"
    assert _value(block, "sourceId") == "appInsightsId"
    [path] = re.findall(r"loadJsonContent\('([^']+)'\)", block)
    assert (MONITORING.parent / path).resolve() == WORKBOOK
    assert re.search(r"fallbackResourceIds:\s*\[\s*appInsightsId\s*\]", block)
    assert re.search(r"name:\s*guid\(", block)  # a workbook's name must be a GUID


def test_an_action_group_is_created_only_for_an_email_and_an_existing_one_wins() -> None:
    text = _bicep(MONITORING)
    assert re.search(r"^var createActionGroup = empty\(existingActionGroupId\) && !empty\(alertEmailAddress\)$",
                     text, re.MULTILINE)
    assert "resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (createActionGroup) {" in text
    assert re.search(r"^var actionGroupIds = !empty\(existingActionGroupId\) \? \[existingActionGroupId\] : "
                     r"\(createActionGroup \? \[actionGroup\.id\] : \[\]\)$", text, re.MULTILINE)


def test_the_monitoring_bicep_parses_and_reads_as_the_text_checks_read_it() -> None:
    """With pycep-parser (the Bicep grammar checkov uses) installed, each file parses and the parser
    sees the queries and metric names the checks above read from the text; without it, only the
    text-level checks run (braces, brackets and parentheses balanced outside strings)."""
    try:
        from pycep import BicepParser
    except ImportError:
        for path in (MONITORING, DELIVERY_ALERTS):
            stripped = re.sub(r"'''.*?'''|'(?:[^'\\]|\\.)*'|//[^\n]*", "", _bicep(path), flags=re.DOTALL)
            for open_, close in ("{}", "[]", "()"):
                assert stripped.count(open_) == stripped.count(close), f"{path.name}: unbalanced {open_}{close}"
        return
    monitoring = BicepParser().parse(text=_bicep(MONITORING))["resources"]
    parsed = {symbol: (r["config"]["properties"]["criteria"]["allOf"][0]["query"].strip(),
                       r["config"]["properties"]["criteria"]["allOf"][0]["metricMeasureColumn"])
              for symbol, r in monitoring.items() if r["type"] == "Microsoft.Insights/scheduledQueryRules"}
    assert parsed == _alert_queries()
    delivery = BicepParser().parse(text=_bicep(DELIVERY_ALERTS))["resources"]
    assert {r["config"]["properties"]["criteria"]["allOf"][0]["metricName"] for r in delivery.values()} == {
        "DeadLetteredCount", "DroppedEventCount"}
