"""Each bundled scenario reproduces its failure in the sandbox: the user's write, sent through the
real SDK exactly as the file describes it, fails with the file's ``expectedError`` (or succeeds,
for the healthy scenario)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from sandbox import USER_PRINCIPAL, Sandbox, load_scenario
from sandbox.scenario import bundled_scenarios
from sandbox.surfaces import deployments as deployments_surface
from sandbox.world import resource_type_of

from . import sdk

FILES = bundled_scenarios()


def _parts(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of a container group id."""
    parts = resource_id.strip("/").split("/")
    return parts[1], parts[3], parts[-1]


def _aci_client(sb: Sandbox, sub: str, api_version: str) -> ContainerInstanceManagementClient:
    return ContainerInstanceManagementClient(sb.credential(USER_PRINCIPAL), sub, api_version=api_version,
                                             base_url=sb.arm_endpoint, connection_verify=sb.ca_bundle,
                                             polling_interval=0.05)


def _perform(sb: Sandbox, failed: dict[str, Any]) -> Any:
    """The user's write, as the scenario describes it; returns the SDK's result or raises."""
    sub, rg, name = _parts(failed["resourceId"])
    if failed.get("via", "direct") == "deployment":
        deployment = {"properties": {"mode": "Incremental", "template": failed["template"],
                                     "parameters": failed["parameters"]}}
        poller = sdk.deployments(sb, sub=sub).deployments.begin_create_or_update(
            rg, failed["deploymentName"], deployment)
        return poller.result()
    if resource_type_of(failed["resourceId"]).lower() == "microsoft.network/privateendpoints":
        # a registry's private endpoint (the ACI-delegated subnet scenario), with the generic client
        return sdk.resources(sb, sub=sub).resources.begin_create_or_update_by_id(
            failed["resourceId"], failed["body"], api_version=failed["apiVersion"]).result()
    client = _aci_client(sb, sub, failed.get("apiVersion", "2023-05-01"))
    return client.container_groups.begin_create_or_update(rg, name, failed["body"]).result()


def _inner_errors(error: Any) -> list[Any]:
    """The error and every error nested in its ``details``, depth first."""
    out = [error]
    for detail in getattr(error, "details", None) or []:
        out += _inner_errors(detail)
    return out


@pytest.fixture
def started() -> Any:
    sandboxes: list[Sandbox] = []

    def start(path: Path) -> Sandbox:
        sb = Sandbox(load_scenario(path))
        sandboxes.append(sb)
        return sb

    yield start
    for sb in sandboxes:
        errors = sb.errors()
        sb.stop()
        assert not errors, f"sandbox internal errors: {errors}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_failed_write_reproduces_expected_error(path: Path, started: Any) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    failed, expected = raw["failedWrite"], raw["expectedError"]
    sb = started(path)
    sub, rg, name = _parts(failed["resourceId"])

    if expected is None:
        result = _perform(sb, failed)
        assert result.provisioning_state == "Succeeded"
        group = sdk.aci(sb, sub=sub).container_groups.get(rg, name)
        assert group.provisioning_state == "Succeeded"
        return

    with pytest.raises(HttpResponseError) as info:
        _perform(sb, failed)
    error = info.value.error
    assert error is not None
    if failed.get("via", "direct") == "deployment":
        assert error.code == "DeploymentFailed"
        inner = [e for e in _inner_errors(error)[1:] if e.code == expected["code"]]
        assert inner, f"no {expected['code']} in the DeploymentFailed details: {error}"
        assert inner[0].message == expected["message"]
    else:
        # async pulls: the PUT was accepted, and the operation's status (200) reports the failure
        accepted = raw["behaviour"].get("pullFailureMode") == "async"
        assert info.value.status_code == (200 if accepted else 400)
        assert (error.code, error.message) == (expected["code"], expected["message"])

    # the failure is on record where the engine will look for it: a failed write in the Activity Log
    group_id = failed["resourceId"].lower()
    failures = [r for r in sb.world.activity
                if r.record["status"]["value"] == "Failed" and r.record["resourceId"].lower() == group_id]
    assert failures, "the failed container group write is in the Activity Log"
    status_message = json.loads(failures[0].record["properties"]["statusMessage"])
    assert status_message["error"]["code"] == expected["code"]
    # an accepted write's body is in its Started record, a rejected one's in its Failed record
    with_body = [r for r in sb.world.activity if r.record["resourceId"].lower() == group_id
                 and r.record["correlationId"] == failures[0].record["correlationId"]
                 and r.record["status"]["value"] in ("Started", "Failed")
                 and "requestbody" in r.record["properties"]]
    has_body = bool(with_body) and (raw["behaviour"].get("pullFailureMode") == "async"
                                    or "requestbody" in failures[0].record["properties"])
    assert has_body == raw["behaviour"].get("activityLogRequestBody", True)


@pytest.mark.parametrize("path", [p for p in FILES if json.loads(p.read_text())["failedWrite"]["via"] == "deployment"],
                         ids=lambda p: p.stem)
def test_deployment_template_evaluates_to_the_body(path: Path, started: Any) -> None:
    """failedWrite.body is what the template deploys, so the engine may recover either and get the same group."""
    failed = json.loads(path.read_text(encoding="utf-8"))["failedWrite"]
    sb = started(path)
    sub, rg, _ = _parts(failed["resourceId"])
    group = sb.world.resource_group(sub, rg)
    assert group is not None
    ctx = deployments_surface.TemplateContext(sub, sb.world.tenant_id, {"name": rg, **group})
    ctx.variables = {k.lower(): v for k, v in failed["template"].get("variables", {}).items()}
    deployments_surface.resolve_parameters(failed["template"], failed["parameters"], ctx)
    planned = deployments_surface.plan_resources(failed["template"], ctx)
    groups = [p for p in planned if p.type == "Microsoft.ContainerInstance/containerGroups"]
    assert len(groups) == 1
    assert groups[0].id.lower() == failed["resourceId"].lower()
    assert groups[0].body == failed["body"]


# --- the expected fix is possible with the remediator's roles ---------------------------------

REMEDIATOR_FIXES = [p for p in FILES
                    if json.loads(p.read_text())["expect"]["outcome"] in ("remediated", "fixed-awaiting-redeploy")]
ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
REGISTRIES = "Microsoft.ContainerRegistry/registries"
CONTAINER_GROUPS = "Microsoft.ContainerInstance/containerGroups"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
REPOSITORY_READER = "b93aa761-3e63-49ed-ac28-beffa264f7ac"


def _written_types(sb: Sandbox, caller: str) -> set[str]:
    return {resource_type_of(r.path) for r in sb.world.writes(caller)}


@pytest.mark.parametrize("path", REMEDIATOR_FIXES, ids=[p.stem for p in REMEDIATOR_FIXES])
def test_remediator_can_apply_the_expected_fix(path: Path, started: Any) -> None:
    """A by-hand fix, as the remediator, with exactly the writes ``expect.writes`` names, makes the
    write succeed; so the scenario is solvable with the roles the infra grants, and no more."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    failed, expect = raw["failedWrite"], raw["expect"]
    sb = started(path)
    remediator = raw["remediator"]["principalId"]
    sub, rg, name = _parts(failed["resourceId"])
    body = failed["body"]
    image = body["properties"]["containers"][0]["properties"]["image"]
    registry = sb.world.registry_by_login_server(image.split("/", 1)[0])
    assert registry is not None
    credential = body["properties"]["imageRegistryCredentials"][0]
    identity = sb.world.get(credential["identity"])
    assert identity is not None

    if ROLE_ASSIGNMENTS in expect["writes"]:
        abac = registry["properties"]["roleAssignmentMode"] == "AbacRepositoryPermissions"
        role = REPOSITORY_READER if abac else ACR_PULL
        sdk.authz(sb, remediator, sub).role_assignments.create(
            registry["id"], "ffffffff-0000-0000-0000-000000000001",
            {"properties": {"roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
                                                f"roleDefinitions/{role}",
                            "principalId": identity["properties"]["principalId"],
                            "principalType": "ServicePrincipal"}})
    if REGISTRIES in expect["writes"]:
        reg_rg = registry["id"].split("/")[4]
        sdk.acr(sb, remediator, sub).registries.begin_update(
            reg_rg, registry["name"], {"properties": {"networkRuleBypassOptions": "AzureServices"}}).result()

    redeployer = remediator if CONTAINER_GROUPS in expect["writes"] else USER_PRINCIPAL
    client = sdk.aci(sb, redeployer, sub)
    behaviour = raw["behaviour"]
    if any("pull" in fault for fault in behaviour.get("faults") or []):
        # a transient pull failure (UNKNOWN retried): the failing write itself uses it up
        with pytest.raises(HttpResponseError):
            _perform(sb, failed)
    propagation = max(behaviour.get("rbacPropagationSeconds", 0), behaviour.get("networkPropagationSeconds", 0))
    if propagation:
        # the assignment has not taken effect yet: the first redeploy fails as before
        with pytest.raises(HttpResponseError) as info:
            client.container_groups.begin_create_or_update(rg, name, body).result()
        assert info.value.error.code == raw["expectedError"]["code"]
        sb.world.advance(propagation)
    assert client.container_groups.begin_create_or_update(rg, name, body).result().provisioning_state == "Succeeded"
    assert _written_types(sb, remediator) == set(expect["writes"])


def test_remediator_may_not_grant_other_roles(started: Any) -> None:
    """The delegation condition holds in the sandbox: AcrPush, or AcrPull to a user, is refused."""
    path = next(p for p in FILES if p.stem == "missing-acrpull")
    raw = json.loads(path.read_text(encoding="utf-8"))
    sb = started(path)
    sub = raw["subscriptions"][0]
    registry = sb.world.registry_by_login_server("myacr.azurecr.io")
    assert registry is not None
    client = sdk.authz(sb, raw["remediator"]["principalId"], sub)
    acr_push = "8311e382-0749-4cb8-b61a-304f252e45ec"
    for role, principal, kind in ((acr_push, "aaaaaaaa-0000-0000-0000-000000000001", "ServicePrincipal"),
                                  (ACR_PULL, USER_PRINCIPAL, "User")):
        with pytest.raises(HttpResponseError) as info:
            client.role_assignments.create(registry["id"], "ffffffff-0000-0000-0000-000000000002", {"properties": {
                "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                "principalId": principal, "principalType": kind}})
        assert info.value.status_code == 403 and info.value.error.code == "AuthorizationFailed"
        assert "ABAC condition not fulfilled" in info.value.error.message
