"""Asynchronous pull failures end to end: the sandbox accepts the create and fails it later, as
ACI does when the pull fails after validation; the app catches it by the ResourceWriteFailure
event ARM raises when the long-running operation ends, and its redeploy is verified by events."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from remediation.demo import demo_settings, engine_for, run
from remediation.signal import parse_event
from sandbox import Sandbox, parse_scenario
from sandbox.eventgrid import dispatcher
from tests.app import World
from tests.worlds import failed_event

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios/async-pull-failure.json"
GROUP = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/myResourceGroup/providers/"
         "Microsoft.ContainerInstance/containerGroups/acrtestcontainergroup")


def _scenario(**behaviour: Any) -> Any:
    data = json.loads(SCENARIO.read_text())
    data["behaviour"].update(behaviour)
    return parse_scenario(data, "test")


def _client(sb: Sandbox) -> ContainerInstanceManagementClient:
    return ContainerInstanceManagementClient(sb.deployer_credential(), "00000000-0000-0000-0000-000000000001",
                                             base_url=sb.arm_endpoint, connection_verify=sb.ca_bundle,
                                             polling_interval=0.05, api_version="2023-05-01")


def test_the_create_is_accepted_then_the_group_fails_with_acis_events() -> None:
    scenario = _scenario(provisioningSeconds=5)
    with Sandbox(scenario) as sb:
        events: list[dict[str, Any]] = []
        sb.subscribe(events.append)
        poller = _client(sb).container_groups.begin_create_or_update(
            "myResourceGroup", "acrtestcontainergroup",
            json.dumps(scenario.failed_write["body"]).encode(),  # type: ignore[arg-type]
            content_type="application/json")
        accepted = sb.world.get(GROUP)
        assert accepted is not None and accepted["properties"]["provisioningState"] == "Pending"
        sb.world.advance(5)
        with pytest.raises(HttpResponseError) as raised:
            poller.result()  # the SDK poller follows Azure-AsyncOperation to the operation's failure
        assert raised.value.error is not None and raised.value.error.code == "InaccessibleImage"
        group = sb.world.get(GROUP)
        assert group is not None and group["properties"]["provisioningState"] == "Failed"
        view = group["properties"]["containers"][0]["properties"]["instanceView"]
        assert [(e["name"], e["type"]) for e in view["events"]] == [
            ("Pulling", "Normal"), ("Failed", "Warning"), ("BackOff", "Normal")]
        assert view["events"][1]["message"].startswith('Failed to pull image "myacr.azurecr.io/pythonworker:v1"')
        dispatcher(sb.world).wait_idle()
        # one event, when the operation ended: no success at acceptance
        assert [e["eventType"] for e in events if e["subject"] == GROUP] == ["Microsoft.Resources.ResourceWriteFailure"]
        records = [e.record for e in sb.world.activity if e.record["resourceId"] == GROUP]
        assert [r["status"]["value"] for r in records] == ["Started", "Accepted", "Failed"]
        assert len({r["correlationId"] for r in records}) == 1
        assert records[1]["subStatus"]["value"] == "Created"
        assert json.loads(records[2]["properties"]["statusMessage"])["error"]["code"] == "InaccessibleImage"
        assert "requestbody" in records[0]["properties"]


def test_sync_mode_still_answers_the_put_with_400() -> None:
    scenario = _scenario(pullFailureMode="sync")
    with Sandbox(scenario) as sb, pytest.raises(HttpResponseError) as raised:
        _client(sb).container_groups.begin_create_or_update(
            "myResourceGroup", "acrtestcontainergroup",
            json.dumps(scenario.failed_write["body"]).encode(),  # type: ignore[arg-type]
            content_type="application/json")
    assert raised.value.status_code == 400


def test_the_bundled_async_scenario_remediates() -> None:
    result = run(SCENARIO, virtual_clock=True)
    assert result.matched, result.mismatches


def test_the_redeploy_in_async_mode_retries_a_failed_operation_while_the_fix_propagates() -> None:
    scenario = _scenario(rbacPropagationSeconds=20)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        report = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True).run(
            parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "remediated"
        assert report["redeploy"]["attempts"] > 1  # accepted, then failed, until the assignment took effect
        group = sb.world.get(GROUP)
        assert group is not None and group["properties"]["provisioningState"] == "Succeeded"


def test_the_redeploy_in_async_mode_is_verified_by_late_events() -> None:
    scenario = _scenario(eventsLagSeconds=15)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        clock = sb.world.now()
        report = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True).run(
            parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "remediated"
        assert sb.world.now() - clock >= 15


@pytest.mark.scenario("scenarios/async-pull-failure.json")
def test_the_function_app_remediates_an_asynchronous_pull_failure(world: World) -> None:
    event = world.fail()
    assert event["eventType"] == "Microsoft.Resources.ResourceWriteFailure"
    failed = world.sb.world.get(GROUP)
    assert failed is not None and failed["properties"]["provisioningState"] == "Failed"
    world.deliver(event)
    assert all(r.ok for r in world.drain())
    (report,) = world.service.ledger.reports_for(GROUP)
    assert report["outcome"] == "remediated"
    assert [c["code"] for c in report["causes"]] == ["ACR_PULL_PERMISSION_MISSING"]
    assert report["errorCode"] == "InaccessibleImage"
    assert report["redeploy"]["status"] == "succeeded"
    group = world.sb.world.get(GROUP)
    assert group is not None and group["properties"]["provisioningState"] == "Succeeded"
    names = [e["name"] for e in group["properties"]["containers"][0]["properties"]["instanceView"]["events"]]
    assert {"Pulled", "Started"} <= set(names) and "Failed" not in names


def test_a_failed_group_tells_the_error_by_its_events_while_the_activity_log_lags() -> None:
    scenario = _scenario(activityLogLagSeconds=3600)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        engine = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True)
        engine.gather_options = replace(engine.gather_options, activity_log_wait_seconds=0)
        report = engine.run(parse_event(event), trigger="eventgrid")
        assert report["errorCode"] == "InaccessibleImage"  # from the Failed warning of the instance view
        assert [c["code"] for c in report["causes"]] == ["ACR_PULL_PERMISSION_MISSING"]
        # who made the write, and whether it is still the group's intent, wait for the log
        assert report["outcome"] == "diagnosed" and report.get("retryable") is True
        assert sb.world.writes(sb.world.remediator) == []


def test_a_deployment_in_async_mode_leaves_the_failed_group_and_is_remediated() -> None:
    data = json.loads(SCENARIO.read_text())
    data["failedWrite"]["via"] = "deployment"
    scenario = parse_scenario(data, "test")
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        failed = sb.world.get(GROUP)
        assert failed is not None and failed["properties"]["provisioningState"] == "Failed"
        events = failed["properties"]["containers"][0]["properties"]["instanceView"]["events"]
        assert [e["name"] for e in events] == ["Pulling", "Failed", "BackOff"]
        report = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True).run(
            parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "remediated"
