"""Verification after a redeploy, as the troubleshooting guide describes it: wait (within the budget)
for ``Pulled`` and ``Started`` events newer than the redeploy; older events never count; a pull
failure newer than the redeploy fails it."""

from __future__ import annotations

import copy
import json
import types
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import ContainerGroup

from remediation.azure.redeploy import RedeployOptions, _events_ok, redeploy
from remediation.demo import demo_settings, engine_for, user_write
from remediation.model import GroupDefinition
from remediation.resource_ids import parse_resource_id
from remediation.signal import parse_event
from sandbox import Sandbox, parse_scenario
from sandbox.surfaces.containerinstance import _as_seen, provision
from tests.worlds import failed_event

ROOT = Path(__file__).resolve().parents[1]
GROUP_ID = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/myResourceGroup/providers/"
            "Microsoft.ContainerInstance/containerGroups/acrtestcontainergroup")


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _group(*events: tuple[str, datetime], state: str = "Succeeded") -> ContainerGroup:
    return ContainerGroup.deserialize({
        "location": "eastus",
        "properties": {
            "provisioningState": state, "osType": "Linux",
            "containers": [{"name": "pythonworker", "properties": {
                "image": "myacr.azurecr.io/pythonworker:v1",
                "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}},
                "instanceView": {"events": [
                    {"name": name, "message": f"{name} container", "type": "Warning" if name == "Failed" else "Normal",
                     "count": 1, "firstTimestamp": _iso(at), "lastTimestamp": _iso(at)} for name, at in events]}}}],
        },
    })


NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def test_events_older_than_the_redeploy_never_count() -> None:
    before = NOW - timedelta(seconds=1)
    assert _events_ok(_group(("Pulled", before), ("Started", before)), NOW)[0] is None


def test_fresh_pulled_and_started_events_verify_the_redeploy() -> None:
    after = NOW + timedelta(seconds=1)
    assert _events_ok(_group(("Pulled", NOW - timedelta(minutes=5)), ("Pulled", after), ("Started", after)), NOW) \
        == (True, "")


def test_a_pull_failure_newer_than_the_redeploy_fails_it() -> None:
    after = NOW + timedelta(seconds=1)
    ok, why = _events_ok(_group(("Pulled", after), ("Started", after), ("Failed", after)), NOW)
    assert ok is False and "Failed after the redeploy" in why


def test_an_old_pull_failure_does_not_fail_the_redeploy() -> None:
    after = NOW + timedelta(seconds=1)
    assert _events_ok(_group(("Failed", NOW - timedelta(seconds=2)), ("Pulled", after), ("Started", after)), NOW)[0]


class _Groups:
    """The container group operations of a client whose group shows only the failed deployment's
    events, a moment old (newer than a clock-skew margin would exclude)."""

    def __init__(self, group: ContainerGroup) -> None:
        self.group = group
        self.puts = 0
        self.gets = 0

    def get(self, *_args: Any, **_kwargs: Any) -> ContainerGroup:
        self.gets += 1
        return self.group

    def begin_create_or_update(self, *_args: Any, **_kwargs: Any) -> Any:
        self.puts += 1
        group = self.group

        class _Poller:
            def result(self) -> ContainerGroup:
                return group

        return _Poller()


class _Clients:
    def __init__(self, groups: _Groups) -> None:
        self.groups = groups

    def container_instance(self, _sub: str) -> Any:
        return type("Client", (), {"container_groups": self.groups})()


def test_the_failed_deployments_recent_events_are_told_apart_by_their_timestamps() -> None:
    # Pulled and Started of the earlier deployment, two seconds old: within the 10 s clock margin,
    # so only the newest event the group showed before the redeploy tells them apart
    recent = datetime.now(UTC) - timedelta(seconds=2)
    groups = _Groups(_group(("Pulled", recent), ("Started", recent), ("Killing", recent)))
    definition = GroupDefinition(GROUP_ID, json.loads((ROOT / "scenarios/missing-acrpull.json").read_text())
                                 ["failedWrite"]["body"], "2023-05-01", "activity-log")
    slept: list[float] = []
    result = redeploy(_Clients(groups), definition,  # type: ignore[arg-type]
                      RedeployOptions(budget_seconds=20, first_delay=1, max_delay=4, sleep=slept.append,
                                      retry_on_propagation=False))
    assert result.status == "failed"
    assert "no Pulled and Started events since the redeploy within the 20s budget" in result.detail
    assert groups.puts == 1 and sum(slept) < 20 and len(slept) >= 3  # it looked again, with backoff


def _scenario(behaviour: dict[str, Any], settings: dict[str, str] | None = None) -> Any:
    data = json.loads((ROOT / "scenarios/missing-acrpull.json").read_text())
    data["behaviour"].update(behaviour)
    data.setdefault("settings", {}).update(settings or {})
    return parse_scenario(data, "test")


def test_the_redeploy_waits_for_late_events() -> None:
    scenario = _scenario({"eventsLagSeconds": 20})
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        clock = sb.world.now()
        report = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True).run(
            parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "remediated", report["redeploy"]
        assert (report["redeploy"]["status"], report["redeploy"]["attempts"]) == ("succeeded", 1)
        assert sb.world.now() - clock >= 20  # it waited (on the sandbox clock) for the events to show


def test_events_later_than_the_budget_fail_the_redeploy() -> None:
    scenario = _scenario({"eventsLagSeconds": 600}, {"REMEDIATION_REDEPLOY_BUDGET_SECONDS": "30"})
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        report = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True).run(
            parse_event(event), trigger="eventgrid")
        assert report["redeploy"]["status"] == "failed"
        redeploy_action = next(a for a in report["actions"] if a["kind"] == "redeploy")
        assert "no Pulled and Started events since the redeploy within the 30s budget" in redeploy_action["detail"]


def test_the_sandbox_shows_events_only_after_their_lag() -> None:
    scenario = _scenario({"eventsLagSeconds": 20})
    with Sandbox(scenario) as sb:
        failed_event(sb, scenario)
        provision(sb.world, GROUP_ID, scenario.failed_write["body"], "2023-05-01")
        stored = sb.world.get(GROUP_ID)
        assert stored is not None
        assert stored["properties"]["containers"][0]["properties"]["instanceView"]["events"]

        def events() -> list[Any]:
            container = _as_seen(sb.world, stored)["properties"]["containers"][0]
            return list(container["properties"]["instanceView"]["events"])

        assert events() == []
        sb.world.advance(21)
        assert [e["name"] for e in events()] == ["Pulling", "Pulled", "Created", "Started"]


def _group_puts(sb: Any, since: int) -> int:
    return sum(1 for r in sb.world.request_log[since:]
               if r.method == "PUT" and "/containergroups/" in r.path.lower())


def _propagating(seconds: float, settings: dict[str, str] | None = None) -> Any:
    return _scenario({"rbacPropagationSeconds": seconds}, settings)


def test_a_fix_that_takes_ten_minutes_to_propagate_costs_at_most_20_puts() -> None:
    # a budget past the ten minutes, so the run ends with the group running, and every PUT it made counted
    scenario = _propagating(600, {"REMEDIATION_REDEPLOY_BUDGET_SECONDS": "700"})
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        clock, before = sb.world.now(), len(sb.world.request_log)
        report = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True).run(
            parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "remediated", report["redeploy"]
        assert sb.world.now() - clock >= 600  # it waited on the sandbox clock for the assignment to take effect
        assert _group_puts(sb, before) <= 20


def test_a_fix_that_propagates_in_five_seconds_runs_within_seven() -> None:
    scenario = _propagating(5)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        clock = sb.world.now()
        report = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True).run(
            parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "remediated", report["redeploy"]
        assert report["redeploy"]["attempts"] > 1  # the first redeploy came before the assignment took effect
        assert sb.world.now() - clock <= 5 + 2  # from the event to the verified running group


def _attempt_times(options: RedeployOptions, until: float) -> list[float]:
    """When each attempt starts, attempts taking no time, up to ``until``."""
    times, retry = [0.0], 0
    while times[-1] + options.delay(retry) <= until:
        times.append(times[-1] + options.delay(retry))
        retry += 1
    return times


def test_the_backoff_retries_within_a_second_early_and_rarely_later_whatever_the_jitter() -> None:
    for draw in (0.0, 0.5, 0.999):
        options = RedeployOptions(rng=lambda draw=draw: draw)  # type: ignore[misc]
        times = _attempt_times(options, 600)
        assert len(times) <= 20, (draw, times)
        # a fix that takes effect within the first five seconds is met by an attempt within a second
        for propagation in (0.5, 1.5, 2.5, 3.5, 4.5, 5.0):
            assert next(t for t in times if t >= propagation) - propagation <= 1.0, (draw, propagation)
        assert max(options.delay(retry) for retry in range(40)) <= 60 * 1.25


def test_the_backoff_is_jittered_past_its_quick_retries() -> None:
    low, high = RedeployOptions(rng=lambda: 0.0), RedeployOptions(rng=lambda: 0.999)
    assert [low.delay(r) for r in range(5)] == [high.delay(r) for r in range(5)] == [1.0] * 5
    assert all(high.delay(r) > low.delay(r) for r in range(5, 20))


class _Redeployed(_Groups):
    """A group that shows the failed deployment's events until the PUT, whose long-running
    operation ends with the redeploy's own fresh events."""

    def __init__(self, before: ContainerGroup, after: ContainerGroup) -> None:
        super().__init__(before)
        self.after = after

    def begin_create_or_update(self, *args: Any, **kwargs: Any) -> Any:
        self.group = self.after
        return super().begin_create_or_update(*args, **kwargs)


def test_the_put_operations_own_result_verifies_the_redeploy_without_another_read() -> None:
    old, fresh = datetime.now(UTC) - timedelta(seconds=2), datetime.now(UTC) + timedelta(seconds=1)
    groups = _Redeployed(_group(("Failed", old)), _group(("Pulled", fresh), ("Started", fresh)))
    definition = GroupDefinition(GROUP_ID, json.loads((ROOT / "scenarios/missing-acrpull.json").read_text())
                                 ["failedWrite"]["body"], "2023-05-01", "activity-log")
    result = redeploy(_Clients(groups), definition, RedeployOptions(budget_seconds=20, sleep=lambda _s: None))  # type: ignore[arg-type]
    assert result.status == "succeeded"
    assert (groups.puts, groups.gets) == (1, 1)  # the read before the PUT, none after it


def test_a_fix_that_takes_the_documented_ten_minutes_is_redeployed_within_the_default_budget() -> None:
    """The last retry comes at the end of the budget (600 s, from after the fix was made) rather
    than a whole backoff before it, so an assignment that takes ten minutes is in effect by then."""
    scenario = _propagating(600)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        before = len(sb.world.request_log)
        settings = demo_settings(sb, scenario)
        assert settings.redeploy_budget_seconds == 600
        report = engine_for(sb, scenario, settings, virtual_clock=True).run(parse_event(event), trigger="eventgrid")
        assert report["outcome"] == "remediated", report["redeploy"]
        assert _group_puts(sb, before) <= 20


def _someone_writes_while_it_propagates(scenario: Any, write: Any) -> tuple[dict[str, Any], Any, int]:
    """Run the engine on the scenario's failure; at the redeploy's third wait, ``write(sb)`` acts as
    someone else. Returns the report, the sandbox world and the remediator's group PUTs after that."""
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        engine = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True)
        waits: list[float] = []
        mark: list[int] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 3:
                write(sb)
                mark.append(len(sb.world.request_log))
            sb.world.advance(seconds)

        engine.redeploy_options = replace(engine.redeploy_options, sleep=sleep)
        report = engine.run(parse_event(event), trigger="eventgrid")
        assert mark, "the redeploy never waited three times"
        puts = sum(1 for r in sb.world.request_log[mark[0]:] if r.caller == sb.world.remediator
                   and r.method == "PUT" and "/containergroups/" in r.path.lower())
        return report, sb.world, puts


def test_a_group_someone_else_redeploys_while_the_fix_propagates_is_not_overwritten() -> None:
    scenario = _propagating(600)
    fixed_by_hand = copy.deepcopy(scenario.failed_write)
    props = fixed_by_hand["body"]["properties"]
    props.pop("imageRegistryCredentials")
    props["containers"][0]["properties"]["image"] = "mcr.microsoft.com/azuredocs/aci-helloworld:latest"

    report, world, puts = _someone_writes_while_it_propagates(
        scenario, lambda sb: user_write(sb, types.SimpleNamespace(failed_write=fixed_by_hand)))
    assert puts == 0
    assert report["redeploy"]["status"] == "skipped" and "someone else" in report["redeploy"]["detail"]
    group = next(r for r in world.resources.values() if r["id"].lower() == GROUP_ID.lower())
    assert group["properties"]["containers"][0]["properties"]["image"].startswith("mcr.microsoft.com/")


def test_a_group_someone_else_deletes_while_the_fix_propagates_is_not_recreated() -> None:
    # an asynchronous pull failure leaves the group in place, so there is a group to delete
    scenario = _scenario({"rbacPropagationSeconds": 600, "pullFailureMode": "async"})

    def delete(sb: Any) -> None:
        sub, rg, _, name = parse_resource_id(GROUP_ID)
        aci = ContainerInstanceManagementClient(sb.deployer_credential(), sub, base_url=sb.arm_endpoint,
                                                connection_verify=sb.ca_bundle, polling_interval=0.05)
        aci.container_groups.begin_delete(rg, name).result()

    report, world, puts = _someone_writes_while_it_propagates(scenario, delete)
    assert puts == 0
    assert report["redeploy"]["status"] == "skipped"
    assert not any(r["id"].lower() == GROUP_ID.lower() for r in world.resources.values())
