"""``python -m remediation demo``: a scenario end to end in the local sandbox.

The scenario's deployer ("the user" unless the scenario names another) makes the failing write
through the real SDK, then any ``laterWrites``; the sandbox delivers the ``ResourceWriteFailure``
event; the engine runs as the scenario's remediator identity; the report is compared with the
scenario's ``expect``. The sandbox is imported only here, so the
deployed app never loads it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.resources import ResourceManagementClient

from .azure.clients import AzureClients
from .azure.gather import GatherOptions
from .azure.redeploy import RedeployOptions
from .engine import Engine
from .model import PRIVATE_ENDPOINT_WRITE, FailureSignal, Skip
from .notify import Notifier
from .report import validate_report
from .resource_ids import parse_resource_id
from .settings import Settings, SettingsError
from .signal import parse_event

Printer = Callable[[str], None]


class DemoInputError(ValueError):
    """Bad demo input (scenario file, settings); one line."""


@dataclass
class DemoResult:
    reports: list[dict[str, Any]]
    matched: bool
    mismatches: list[str] = field(default_factory=list)
    user_error: dict[str, str] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    world: Any = None


def user_write(sb: Any, scenario: Any) -> dict[str, str] | None:
    """Make the scenario's write as its deployer; returns the ARM error it got, or None on success."""
    fw = scenario.failed_write
    sub, rg, _, name = parse_resource_id(fw["resourceId"])
    cred = sb.deployer_credential()
    common: dict[str, Any] = {"base_url": sb.arm_endpoint, "connection_verify": sb.ca_bundle, "polling_interval": 0.05}
    try:
        if fw.get("via", "direct") == "deployment":
            deployments = DeploymentsMgmtClient(cred, sub, **common)
            template = fw.get("template") or _template_around(fw)
            params = fw.get("parameters") or {}
            body = {"properties": {"mode": "Incremental", "template": template, "parameters": params}}
            deployments.deployments.begin_create_or_update(rg, fw.get("deploymentName", f"{name}-deploy"),
                                                           cast(Any, body)).result()
        elif _is_private_endpoint(fw["resourceId"]):
            # a registry's private endpoint (a scenario of the ACI-delegated subnet), through the generic client
            client = ResourceManagementClient(cred, sub, **common)
            client.resources.begin_create_or_update_by_id(
                fw["resourceId"], cast(Any, json.dumps(fw["body"]).encode()),
                api_version=fw.get("apiVersion", "2024-05-01"), content_type="application/json").result()
        else:
            aci = ContainerInstanceManagementClient(cred, sub, api_version=fw.get("apiVersion", "2023-05-01"), **common)
            raw = json.dumps(fw["body"]).encode()
            # raw bytes, so the sandbox sees exactly the scenario's JSON (the SDK's overloads say IO)
            aci.container_groups.begin_create_or_update(rg, name, cast(Any, raw),
                                                        content_type="application/json").result()
    except HttpResponseError as exc:
        err = exc.error
        code = err.code if err is not None else str(exc.status_code)
        message = err.message if err is not None else str(exc)
        details = getattr(err, "details", None) or []
        if code == "DeploymentFailed" and details:
            code, message = details[0].code, details[0].message
        return {"code": str(code), "message": str(message)}
    return None


def _is_private_endpoint(resource_id: str) -> bool:
    return f"/providers/{PRIVATE_ENDPOINT_WRITE.rsplit('/', 1)[0]}/".lower() in resource_id.lower()


def later_writes(sb: Any, scenario: Any) -> None:
    """What the deployer does to the failed group after the failure (the scenario's ``laterWrites``):
    each PUT or DELETE is made with the real SDK and waited for; an ARM error is raised."""
    sub, rg, _, name = parse_resource_id(scenario.failed_write["resourceId"])
    for write in scenario.later_writes:
        aci = ContainerInstanceManagementClient(sb.deployer_credential(), sub, base_url=sb.arm_endpoint,
                                                connection_verify=sb.ca_bundle, polling_interval=0.05,
                                                api_version=write.get("apiVersion", "2023-05-01"))
        if write["method"] == "DELETE":
            aci.container_groups.begin_delete(rg, name).result()
        else:
            raw = json.dumps(write["body"]).encode()
            aci.container_groups.begin_create_or_update(rg, name, cast(Any, raw),
                                                        content_type="application/json").result()


def _template_around(fw: dict[str, Any]) -> dict[str, Any]:
    name = fw["resourceId"].rstrip("/").rsplit("/", 1)[-1]
    resource = {"type": "Microsoft.ContainerInstance/containerGroups", "apiVersion": fw.get("apiVersion", "2023-05-01"),
                "name": name, **fw["body"]}
    return {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0", "resources": [resource]}


def compare(expect: dict[str, Any] | None, reports: list[dict[str, Any]], world: Any) -> list[str]:
    """What differs between the scenario's ``expect`` and the run (empty when it matched)."""
    if not expect:
        return []
    report = _main_report(reports)
    problems: list[str] = []
    if report is None:
        return ["no report was produced"]
    if "outcome" in expect and report["outcome"] != expect["outcome"]:
        problems.append(f"outcome {report['outcome']!r}, expected {expect['outcome']!r}")
    if "causes" in expect:
        got = sorted(c["code"] for c in report["causes"])
        if got != sorted(expect["causes"]):
            problems.append(f"causes {got}, expected {sorted(expect['causes'])}")
    if "actions" in expect:
        # the fixes, applied or (in a dry run) planned; the redeploy is judged by redeployAttempts
        kinds = sorted(a["kind"] for a in report["actions"]
                       if a["status"] in ("applied", "planned") and a["kind"] != "redeploy")
        if kinds != sorted(expect["actions"]):
            problems.append(f"actions {kinds}, expected {sorted(expect['actions'])}")
    attempts = expect.get("redeployAttempts")
    if isinstance(attempts, dict) and "min" in attempts and report["redeploy"]["attempts"] < attempts["min"]:
        problems.append(f"redeploy attempts {report['redeploy']['attempts']}, expected at least {attempts['min']}")
    if "writes" in expect and world is not None and world.remediator:
        from sandbox.world import resource_type_of

        types = sorted({resource_type_of(r.path) for r in world.writes(world.remediator)})
        if types != sorted(set(expect["writes"])):
            problems.append(f"remediator wrote {types}, expected {sorted(set(expect['writes']))}")
    return problems


def _main_report(reports: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The report about the failed write (a deployment's own event is skipped, not the story)."""
    for report in reports:
        resource = str(report.get("resourceId", "")).lower()
        if "/containergroups/" in resource or "/privateendpoints/" in resource:
            return report
    return reports[0] if reports else None


def run(scenario_path: str | Path | None, *, printer: Printer | None = None,
        env_settings: Settings | None = None, virtual_clock: bool = False) -> DemoResult:
    """Run a scenario; ``printer`` receives the step-by-step story for a person.
    ``virtual_clock``: see :func:`engine_for`."""
    from sandbox import Sandbox, ScenarioError, load_scenario
    from sandbox.eventgrid import dispatcher
    from sandbox.scenario import DEFAULT_SCENARIO

    say = printer or (lambda _line: None)
    try:
        scenario = load_scenario(scenario_path or DEFAULT_SCENARIO)
    except ScenarioError as exc:
        raise DemoInputError(str(exc)) from None
    if not scenario.failed_write:
        raise DemoInputError(f"{scenario.source}: failedWrite is missing; the demo needs a write to make")
    base = env_settings or Settings()
    with Sandbox(scenario) as sb:
        try:
            settings = demo_settings(sb, scenario, base).with_overrides(sink_settings(sb))
        except SettingsError as exc:
            raise DemoInputError(f"{scenario.source}: settings: {exc}") from None
        say(f"Scenario {scenario.name}: {scenario.description}")
        events: list[dict[str, Any]] = []
        sb.subscribe(events.append, included_event_types=["Microsoft.Resources.ResourceWriteFailure"])
        fw = scenario.failed_write
        t0 = time.monotonic()
        user_error = user_write(sb, scenario)
        via = "a template deployment" if fw.get("via") == "deployment" else "a direct PUT"
        if user_error:
            say(f"1. The user deploys {fw['resourceId'].rsplit('/', 1)[-1]} through {via} "
                f"(api-version {fw.get('apiVersion', '2023-05-01')}) and gets "
                f"{user_error['code']}: {user_error['message']}  [{time.monotonic() - t0:.2f}s]")
        else:
            say(f"1. The user deploys {fw['resourceId'].rsplit('/', 1)[-1]} through {via}: it succeeded.")
        later_writes(sb, scenario)
        for write in scenario.later_writes:
            say(f"   Then the user {'deletes' if write['method'] == 'DELETE' else 'deploys another version of'} "
                "the group, and it succeeds.")
        dispatcher(sb.world).wait_idle()
        engine = engine_for(sb, scenario, settings, say, virtual_clock=virtual_clock)
        clients = engine.clients
        notifier = notifier_for(sb, settings)
        reports: list[dict[str, Any]] = []
        if not events:
            say("2. Event Grid delivered no ResourceWriteFailure event: nothing to remediate.")
            reports.append(engine.run(Skip("the write succeeded; no ResourceWriteFailure event",
                                           fw["resourceId"]), trigger="eventgrid"))
        for i, event in enumerate(events, start=2):
            item: FailureSignal | Skip = parse_event(event)
            say(f"{i}. Event Grid delivered {event['eventType']} for {event['subject'].rsplit('/', 2)[-2]}/"
                f"{event['subject'].rsplit('/', 1)[-1]} (correlation {event['data'].get('correlationId')})")
            report = engine.run(item, trigger="eventgrid")
            if report["outcome"] != "skipped":
                report["notifications"] = notifier.send(report)
                validate_report(report)
            reports.append(report)
            _tell(say, report)
        clients.close()
        if sb.world.sink_posts:
            say("Summaries delivered in the sandbox:")
            for post in sb.world.sink_posts:
                say(f"   {_SINK_NAMES[post['channel']]}: {post['bytes']:,} bytes{_sink_detail(post)}")
        mismatches = compare(scenario.expect, reports, sb.world)
        result = DemoResult(reports, not mismatches, mismatches, user_error, events, sb.world)
        result.world = _dump(sb.world)
    return result


DEMO_TOPIC_KEY = "sandbox-topic-key"
DEMO_WEBHOOK_SECRET = "sandbox-demo-signing-secret"  # nosec B105 # the sandbox sinks' fixed value, no credential


def sink_settings(sb: Any) -> dict[str, str]:
    """Every notification channel pointed at the sandbox's recording sinks."""
    return {"TEAMS_WEBHOOK_URL": f"{sb.arm_endpoint}/sinks/teams",
            "SLACK_WEBHOOK_URL": f"{sb.arm_endpoint}/sinks/slack",
            "WEBHOOK_URL": f"{sb.arm_endpoint}/sinks/webhook", "WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET,
            "EVENTGRID_TOPIC_ENDPOINT": f"{sb.arm_endpoint}/sinks/eventgrid/api/events",
            "EVENTGRID_TOPIC_KEY": DEMO_TOPIC_KEY}


def notifier_for(sb: Any, settings: Settings) -> Notifier:
    """A notifier that trusts the sandbox's CA (the sinks are served over its TLS)."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides session.verify
    session.verify = sb.ca_bundle
    return Notifier(settings, session=session, connection_verify=sb.ca_bundle, sleep=lambda _s: None)


def demo_settings(sb: Any, scenario: Any, base: Settings | None = None) -> Settings:
    """Settings for a run in ``sb``: the sandbox's endpoints, the scenario's remediator and overrides."""
    return (base or Settings()).with_overrides({
        "ARM_ENDPOINT": sb.arm_endpoint, "ARM_CA_BUNDLE": sb.ca_bundle,
        "ACR_ENDPOINT_TEMPLATE": f"{sb.arm_endpoint}/registries/{{loginServer}}",
        **({"REMEDIATOR_PRINCIPAL_ID": scenario.remediator["principalId"]} if scenario.remediator else {}),
        **scenario.settings,
    })


def engine_for(sb: Any, scenario: Any, settings: Settings, say: Printer | None = None, *,
               virtual_clock: bool = False) -> Engine:
    """An engine acting as the scenario's remediator, with waits scaled down for the sandbox.

    ``virtual_clock``: the engine's waits (Activity Log polls, redeploy backoff) move the sandbox's
    clock instead of sleeping, so propagation delays and log lag pass at once (tests).
    """
    tell = say or (lambda _line: None)
    clients = AzureClients(sb.remediator_credential(), arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle,
                           registry_endpoint_template=settings.acr_endpoint_template, polling_interval=0.05)
    lag = float(scenario.behaviour.get("activityLogLagSeconds", 0) or 0)
    sleep: Callable[[float], None] = sb.world.advance if virtual_clock else time.sleep
    return Engine(
        clients, settings,
        gather_options=GatherOptions(subscriptions=tuple(scenario.subscriptions),
                                     activity_log_wait_seconds=max(10.0, lag * 3), activity_log_poll_seconds=0.5,
                                     sleep=sleep),
        # the production backoff; on the real clock the budget is cut to a minute for a demo
        redeploy_options=RedeployOptions(budget_seconds=float(settings.redeploy_budget_seconds) if virtual_clock
                                         else min(float(settings.redeploy_budget_seconds), 60.0),
                                         progress=lambda line: tell(f"     {line}"), sleep=sleep),
        progress=(lambda stage, took, summary: tell(f"   - {stage} ({took:.2f}s): {summary}")) if say else None,
    )


_SINK_NAMES = {"teams": "Teams (Adaptive Card via a Workflows webhook, /sinks/teams)",
               "slack": "Slack (Block Kit via an incoming webhook, /sinks/slack)",
               "webhook": "generic webhook (report JSON, HMAC-signed, /sinks/webhook)",
               "eventgrid": "Event Grid topic (CloudEvent, /sinks/eventgrid/api/events)"}


def _sink_detail(post: dict[str, Any]) -> str:
    body = post["body"]
    if post["channel"] == "teams" and isinstance(body, dict):
        return f", card version {body['attachments'][0]['content'].get('version')}"
    if post["channel"] == "slack" and isinstance(body, dict):
        return f", {len(body.get('blocks') or [])} blocks: {str(body.get('text', ''))[:80]!r}"
    if post["channel"] == "webhook":
        signed = "x-remediation-signature" in post["headers"]
        return ", signed" if signed else ", unsigned"
    if post["channel"] == "eventgrid":
        events = body if isinstance(body, list) else [body]
        return f", type {events[0].get('type') if events and isinstance(events[0], dict) else '?'}"
    return ""


def _tell(say: Printer, report: dict[str, Any]) -> None:
    if report["outcome"] == "skipped":
        say(f"   skipped: {report.get('skipReason', '')}")
        return
    for cause in report["causes"]:
        say(f"   cause {cause['code']}{' (fixable)' if cause['fixable'] else ''}: {cause['summary']}")
    for action in report["actions"]:
        say(f"   {action['status']:>7} {action['kind']} on {action['target'].rsplit('/', 1)[-1]}: {action['detail']}")
    redeploy = report["redeploy"]
    say(f"   redeploy {redeploy['status']} ({redeploy['attempts']} attempt(s)); outcome: {report['outcome']}")
    for note in report.get("notes") or []:
        say(f"   note: {note}")


def _dump(world: Any) -> list[dict[str, Any]]:
    return list(world.dump_resources())
