"""UNKNOWN retried once (CONTRACT.md §1 last row, §6 REMEDIATION_RETRY_UNEXPLAINED): where every
check could decide and none fired, the recorded definition is redeployed once, unchanged."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from remediation.checks import UNKNOWN
from remediation.demo import run
from remediation.plan import plan
from remediation.policy import gate
from remediation.settings import Settings
from tests.app import World
from tests.test_plan import finding, make_ctx

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios/unknown-cause.json"
GROUP = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/myResourceGroup/providers/"
         "Microsoft.ContainerInstance/containerGroups/acrtestcontainergroup")


def test_an_unexplained_failure_plans_one_unchanged_redeploy() -> None:
    (action,) = plan([finding(UNKNOWN.code, fixable=False)], make_ctx())
    assert (action.kind, action.cause, set(action.params)) == ("redeploy", "UNKNOWN", {"apiVersion"})


def test_nothing_is_retried_where_a_check_could_not_decide() -> None:
    ctx = replace(make_ctx(), notes=("role assignments of principal aaaa could not be listed: 403",))
    assert plan([finding(UNKNOWN.code, fixable=False)], ctx) == []


def test_nothing_is_retried_without_a_definition() -> None:
    assert plan([finding(UNKNOWN.code, fixable=False)], make_ctx(with_definition=False)) == []


def test_the_gate_allows_the_retry_by_default() -> None:
    ctx = make_ctx()
    decided = gate(plan([finding(UNKNOWN.code, fixable=False)], ctx), ctx, Settings())
    assert [(a.kind, a.status) for a in decided.to_apply] == [("redeploy", "planned")]


def test_the_setting_false_never_retries() -> None:
    ctx = make_ctx()
    decided = gate(plan([finding(UNKNOWN.code, fixable=False)], ctx), ctx, Settings(retry_unexplained=False))
    assert decided.to_apply == ()
    assert "REMEDIATION_RETRY_UNEXPLAINED is false" in decided.actions[0].detail


def test_an_earlier_attempt_on_the_group_means_no_second_retry() -> None:
    ctx = make_ctx()
    decided = gate(plan([finding(UNKNOWN.code, fixable=False)], ctx), ctx, Settings(), attempts_in_window=1)
    assert decided.to_apply == ()
    assert "redeployed once" in decided.actions[0].detail


def test_the_bundled_transient_failure_is_retried_and_clears() -> None:
    result = run(SCENARIO, virtual_clock=True)
    assert result.matched, result.mismatches
    (report,) = result.reports
    assert [c["code"] for c in report["causes"]] == ["UNKNOWN"]
    assert (report["outcome"], report["redeploy"]["status"], report["redeploy"]["attempts"]) == (
        "remediated", "succeeded", 1)


def test_a_persistent_unexplained_failure_is_redeployed_once_and_reported_failed(tmp_path: Path) -> None:
    data = json.loads(SCENARIO.read_text())
    data["behaviour"]["faults"][0]["times"] = 5
    data["expect"] = {"outcome": "failed", "causes": ["UNKNOWN"]}
    path = tmp_path / "persistent.json"
    path.write_text(json.dumps(data))
    result = run(path, virtual_clock=True)
    assert result.matched, result.mismatches
    report, *later = result.reports
    assert report["redeploy"]["attempts"] == 1  # no propagation retries: nothing was fixed
    # the failed retry raised its own event, which the loop guard skips: never a second retry
    assert later and all("loop guard" in (r["skipReason"] or "") for r in later)


@pytest.mark.scenario("scenarios/unknown-cause.json", settings={"REMEDIATION_RETRY_UNEXPLAINED": "false"})
def test_the_function_app_with_the_setting_false_only_diagnoses(world: World) -> None:
    world.deliver(world.fail())
    assert all(r.ok for r in world.drain())
    (report,) = world.service.ledger.reports_for(GROUP)
    assert (report["outcome"], [c["code"] for c in report["causes"]]) == ("diagnosed", ["UNKNOWN"])
    assert world.remediator_writes() == []


@pytest.mark.scenario("scenarios/unknown-cause.json")
def test_the_function_app_retries_once_and_not_for_the_next_failure(world: World) -> None:
    world.deliver(world.fail())
    assert all(r.ok for r in world.drain())
    (report,) = world.service.ledger.reports_for(GROUP)
    assert report["outcome"] == "remediated" and [c["code"] for c in report["causes"]] == ["UNKNOWN"]
    puts = len(world.remediator_writes())
    assert puts == 1
    # the group is gone and the deployer's next create fails the same way: the ledger holds the attempt
    world.sb.world.delete(GROUP)
    world.sb.world.behaviour["faults"] = [{"match": "PULL myacr.azurecr.io/*", "pull": "fail", "times": 1}]
    world.sb.world.fault_hits.clear()
    world.events.clear()
    world.deliver(world.fail())
    assert all(r.ok for r in world.drain())
    newest = world.service.ledger.reports_for(GROUP)[0]
    assert newest["outcome"] == "diagnosed"
    assert "redeployed once" in newest["actions"][0]["detail"]
    assert len(world.remediator_writes()) == puts


def test_a_resumed_run_redeploys_as_the_resume_not_as_a_retry() -> None:
    # the earlier run's fix explains the failure now found unexplained; its attempt must not refuse the redeploy
    ctx = make_ctx()
    decided = gate(plan([finding(UNKNOWN.code, fixable=False)], ctx), ctx, Settings(), attempts_in_window=1,
                   resume=True)
    assert [(a.kind, a.cause, a.status) for a in decided.to_apply] == [("redeploy", "resume", "planned")]
