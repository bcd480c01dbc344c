"""The pull-permission causes end to end in the sandbox: what Azure ends up holding, not only the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from remediation.actions.assign_role import repository_condition
from remediation.demo import run

ROOT = Path(__file__).resolve().parents[1]
IDENTITY = "aaaaaaaa-0000-0000-0000-000000000001"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
REPOSITORY_READER = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
RA_TYPE = "Microsoft.Authorization/roleAssignments"


def _scenario(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "scenarios" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _identity_assignments(world: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    return [r for r in world if r["type"] == RA_TYPE and r["properties"]["principalId"] == IDENTITY
            and r["properties"]["roleDefinitionId"].lower().endswith(f"/{role}")]


def test_a_propagating_acrpull_is_waited_for_and_never_duplicated() -> None:
    result = run(ROOT / "scenarios/pull-permission-propagating.json", virtual_clock=True)
    assert result.matched, result.mismatches
    report = next(r for r in result.reports if r["outcome"] == "remediated")
    assert [c["code"] for c in report["causes"]] == ["ACR_PULL_PERMISSION_PROPAGATING"]
    assert [a["kind"] for a in report["actions"]] == ["redeploy"]
    assert report["redeploy"]["attempts"] >= 2  # the redeploy's propagation retries did the waiting
    (held,) = _identity_assignments(result.world, ACR_PULL)  # still the one, no second AcrPull
    assert held["name"] == "eeeeeeee-0000-0000-0000-0000000000a1"
    assert "sandbox" not in held and held["properties"]["createdOn"]


def test_the_excluding_assignment_is_left_byte_identical_and_an_additional_conditioned_one_is_made() -> None:
    scenario = _scenario("abac-condition-excludes-repository")
    (before,) = [r for r in scenario["resources"]
                 if r["type"] == RA_TYPE and r["properties"]["principalId"] == IDENTITY]
    result = run(ROOT / "scenarios/abac-condition-excludes-repository.json", virtual_clock=True)
    assert result.matched, result.mismatches
    readers = {r["id"]: r for r in _identity_assignments(result.world, REPOSITORY_READER)}
    assert json.dumps(readers.pop(before["id"]), sort_keys=True) == json.dumps(before, sort_keys=True)
    (added,) = readers.values()
    assert added["properties"]["scope"].endswith("/registries/myacr")
    assert added["properties"]["condition"] == repository_condition(["telemetry-sidecar"])
    assert added["properties"]["conditionVersion"] == "2.0"


def test_where_azure_would_refuse_a_second_reader_nothing_is_written_and_the_widening_is_proposed() -> None:
    result = run(ROOT / "scenarios/abac-condition-excludes-same-scope.json", virtual_clock=True)
    assert result.matched, result.mismatches
    (report,) = [r for r in result.reports if r["outcome"] == "diagnosed"]
    (cause,) = report["causes"]
    assert cause["fixable"] is False
    assert "Azure allows one assignment per principal, role and scope" in cause["evidence"]["additionalAssignment"]
    assert cause["evidence"]["suggestedCondition"] == repository_condition(["pythonworker", "telemetry-sidecar"])
    assert len(_identity_assignments(result.world, REPOSITORY_READER)) == 1


def test_a_custom_roles_wildcard_is_not_pull_without_arm_private_link_and_is_with_it() -> None:
    refused = run(ROOT / "scenarios/custom-role-wildcard-not-honoured.json", virtual_clock=True)
    assert refused.matched, refused.mismatches
    assert len(_identity_assignments(refused.world, ACR_PULL)) == 1  # AcrPull had to be given
    linked = run(ROOT / "scenarios/custom-role-grants-pull.json", virtual_clock=True)
    assert linked.matched, linked.mismatches
    assert _identity_assignments(linked.world, ACR_PULL) == []


def test_an_acrpull_held_through_an_entra_group_counts_for_the_identity() -> None:
    result = run(ROOT / "scenarios/identity-pulls-through-group.json", virtual_clock=True)
    assert result.matched, result.mismatches
    report = next(r for r in result.reports if r["outcome"] == "remediated")
    assert "ACR_PULL_PERMISSION_MISSING" not in {c["code"] for c in report["causes"]}
    assert _identity_assignments(result.world, ACR_PULL) == []
