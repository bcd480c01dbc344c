"""Least privilege, both ways: the remediator holds exactly what infra/ grants it, and that is enough.

The roles, scopes, delegation condition and policy are read from the Bicep (tests/bicep.py) and
become the remediator's only rights in a scenario world, as main.bicep would deploy them for the
scopes of a layout (``LAYOUTS``): the custom role at each allowed scope (and the subscription
reads role at the subscription of an allowed resource group), the registry role and the
conditioned Role Based Access Control Administrator at each registries' scope, and the Deny
policy on public network access there. Then

- every bundled scenario still ends as its ``expect`` says, the sandbox refused the remediator
  nothing, and the actions it authorized for the remediator are exactly the custom roles'
  actions plus the one RBAC Administrator is there for (no unused action, no missing one);
- the remediator's own attempts, through the real SDK clients, to grant itself or anyone more
  are refused by the sandbox as Azure would refuse them.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.containerregistry.models import RegistryUpdateParameters

import remediation.demo as demo
from sandbox import USER_PRINCIPAL, Sandbox, load_scenario
from sandbox.scenario import bundled_scenarios
from sandbox.world import World
from tests import sdk
from tests.bicep import ScopeRbac, remediator_rbac

ROOT = Path(__file__).resolve().parents[1]
RA_TYPE = "Microsoft.Authorization/roleAssignments"
RA_WRITE = "Microsoft.Authorization/roleAssignments/write"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
FIXABLE = ("remediated", "fixed-awaiting-redeploy")
_NS = uuid.UUID("5a1d0c2e-6a57-4a43-9d0f-3f1d2c4b5e6a")  # names of the Bicep-derived world's objects


def _is_registry(resource: dict[str, Any]) -> bool:
    return str(resource["type"]).lower() == "microsoft.containerregistry/registries"


def _group_of(resource_id: str) -> str | None:
    parts = resource_id.split("/")
    return "/".join(parts[:5]) if len(parts) >= 5 and parts[3].lower() == "resourcegroups" else None


LAYOUTS = ("subscriptions", "resource groups")
"""How a test world lays out the scopes: the scenario's subscriptions as the allowed scopes and
each registry as a registries' scope, or the resource groups holding the scenario's resources
and its failed write as the allowed scopes and those holding registries as the registries'."""


def bicep_world(raw: dict[str, Any], layout: str = "subscriptions") -> dict[str, Any]:
    """``raw`` (a scenario file's JSON) with the remediator's rights replaced by what infra/ grants
    at the scopes of ``layout``."""
    scenario = copy.deepcopy(raw)
    principal = scenario["remediator"]["principalId"]
    rbac = remediator_rbac(principal)
    subs = [s.lower() for s in scenario["subscriptions"]]
    roles = {}
    for symbol, role in rbac.roles.items():
        guid = str(uuid.uuid5(_NS, symbol))
        roles[symbol] = f"/subscriptions/{subs[0]}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        scenario.setdefault("roleDefinitions", []).append({
            "id": roles[symbol], "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {"roleName": f"bicep {symbol}", "type": "CustomRole", "description": symbol,
                           "assignableScopes": [f"/subscriptions/{s}" for s in subs],
                           "permissions": [{"actions": list(role.actions), "notActions": list(role.not_actions),
                                            "dataActions": list(role.data_actions),
                                            "notDataActions": list(role.not_data_actions)}]}})
    resources = [r for r in scenario["resources"]
                 if not (r["type"] == RA_TYPE and r["properties"]["principalId"].lower() == principal.lower())]
    registries = [r["id"] for r in raw["resources"] if _is_registry(r)]
    # (the scope a module is deployed to, the registry it names or None, what it grants)
    scopes: list[tuple[str, str | None, ScopeRbac]]
    if layout == "subscriptions":
        allowed = [f"/subscriptions/{s}" for s in subs]
        scopes = [(scope, None, rbac.allowed["subscription"]) for scope in allowed]
        scopes += [(r.split("/providers/")[0], r, rbac.registries["registry"]) for r in registries]
    else:
        ids = [r["id"] for r in raw["resources"]] + [raw["failedWrite"]["resourceId"]]
        allowed = sorted({g for g in map(_group_of, ids) if g})
        scopes = [(scope, None, rbac.allowed["resourceGroup"]) for scope in allowed]
        scopes += [(sub, None, rbac.allowed["subscriptionOfResourceGroup"])
                   for sub in sorted({"/".join(g.split("/")[:3]) for g in allowed})]
        scopes += [(group, None, rbac.registries["resourceGroup"])
                   for group in sorted({g for g in map(_group_of, registries) if g})]
    for deployed_at, registry, granted in scopes:
        for grant in granted.grants:
            scope = registry if grant.at == "registry" and registry else deployed_at
            role_id = roles.get(grant.role) or f"/providers/Microsoft.Authorization/roleDefinitions/{grant.role}"
            name = str(uuid.uuid5(_NS, f"{scope}|{grant.role}"))  # as the Bicep: guid(scope, principal, role)
            resources.append({
                "id": f"{scope}/providers/{RA_TYPE}/{name}", "name": name, "type": RA_TYPE,
                "properties": {"scope": scope, "roleDefinitionId": role_id, "principalId": grant.principal_id,
                               "principalType": grant.principal_type, "condition": grant.condition,
                               "conditionVersion": grant.condition_version,
                               "description": f"tests/bicep.py: {granted.module} {grant.symbol}"},
                "sandbox": {"createdSecondsAgo": 86400}})
        for policy in granted.policies:
            scope = registry if policy.at == "registry" and registry else deployed_at
            resources.append({
                "id": f"{scope}/providers/Microsoft.Authorization/policyAssignments/{policy.name}",
                "name": policy.name, "type": "Microsoft.Authorization/policyAssignments",
                "properties": {"displayName": policy.symbol, "scope": scope, "notScopes": [],
                               "policyDefinitionId": f"/providers/Microsoft.Authorization/policyDefinitions/"
                                                     f"{policy.definition_guid}",
                               "parameters": policy.parameters, "enforcementMode": "Default"}})
    scenario["resources"] = resources
    settings = scenario.setdefault("settings", {})
    settings.setdefault("REMEDIATION_ALLOWED_SCOPES", ",".join(allowed))
    return scenario


def granted_actions(world: dict[str, Any]) -> set[str]:
    """Every action the custom roles assigned to the remediator in ``world`` hold, and the role
    assignment writes that RBAC Administrator (its built-in ``*/read`` aside) is assigned for."""
    principal = world["remediator"]["principalId"].lower()
    assigned = {r["properties"]["roleDefinitionId"].rsplit("/", 1)[-1].lower() for r in world["resources"]
                if r["type"] == RA_TYPE and r["properties"]["principalId"].lower() == principal}
    actions = {a.lower() for role in world.get("roleDefinitions", []) if role["name"].lower() in assigned
               for permission in role["properties"]["permissions"] for a in permission["actions"]}
    if RBAC_ADMINISTRATOR in assigned:
        actions.add(RA_WRITE.lower())
    return actions


@pytest.fixture
def captured_worlds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[World]]:
    """The sandbox world of each ``demo.run``, as its expectations are compared."""
    worlds: list[World] = []
    compare = demo.compare

    def capture(expect: Any, reports: Any, world: World) -> list[str]:
        worlds.append(world)
        return compare(expect, reports, world)

    monkeypatch.setattr(demo, "compare", capture)
    yield worlds


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_bundled_scenario_completes_with_exactly_the_bicep_rights(
        tmp_path: Path, captured_worlds: list[World], layout: str) -> None:
    used: set[str] = set()
    expected: set[str] = set()
    fixable = 0
    for path in bundled_scenarios():
        raw = json.loads(path.read_text(encoding="utf-8"))
        principal = raw["remediator"]["principalId"].lower()
        world_json = bicep_world(raw, layout)
        expected |= granted_actions(world_json)
        derived = tmp_path / path.name
        derived.write_text(json.dumps(world_json), encoding="utf-8")
        result = demo.run(derived, virtual_clock=True)
        assert result.matched, (path.stem, result.mismatches)
        fixable += raw.get("expect", {}).get("outcome") in FIXABLE
        world = captured_worlds[-1]
        checks = [c for c in world.authorization_checks if c.principal == principal]
        # Repository data actions in ABAC-mode registries are refused by design: the remediator
        # holds none, and its image lookup there reports that it could not decide.
        refused = sorted({(c.operation, c.scope) for c in checks if not c.allowed and not c.data})
        assert refused == [], (path.stem, "the Bicep's roles lack", refused)
        denied = [(r.method, r.path, r.status) for r in world.request_log
                  if (r.caller or "").lower() == principal and r.status in (401, 403)
                  and not r.path.startswith(("/registries/", "/oauth2/"))]
        assert denied == [], (path.stem, denied)
        used |= {c.operation.lower() for c in checks if c.allowed}
    assert fixable >= 20
    assert all(not role.data_actions for role in remediator_rbac(principal).roles.values())
    assert sorted(used - expected) == [], "authorized by a role the Bicep should not need"
    assert sorted(expected - used) == [], "granted by the Bicep but never used by any scenario"


# --- the remediator's own attempts ----------------------------------------------------------------

SCENARIO = ROOT / "scenarios" / "missing-acrpull.json"
REGISTRY_OWNER = "99999999-0000-0000-0000-000000000009"  # neither remediator nor deployer: unrestricted


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    raw = json.loads(SCENARIO.read_text(encoding="utf-8"))
    path = tmp_path / "bicep-world.json"
    path.write_text(json.dumps(bicep_world(raw)), encoding="utf-8")
    with Sandbox(load_scenario(path)) as sb:
        yield sb


def _ids(sb: Sandbox) -> tuple[str, str, str, str]:
    """(subscription, registry id, the group's pull identity's principal id, the remediator)."""
    registry = next(r for r in sb.world.of_type("Microsoft.ContainerRegistry/registries"))
    identity = next(r for r in sb.world.of_type("Microsoft.ManagedIdentity/userAssignedIdentities"))
    return sb.world.subscriptions[0], registry["id"], identity["properties"]["principalId"], sb.world.remediator or ""


def _assign(sb: Sandbox, scope: str, role: str, principal: str, principal_type: str = "ServicePrincipal") -> None:
    sub, _, _, remediator = _ids(sb)
    sdk.authz(sb, remediator, sub).role_assignments.create(
        scope, str(uuid.uuid4()), RoleAssignmentCreateParameters(
            role_definition_id=f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}",
            principal_id=principal, principal_type=principal_type))


def _refused(call: Any, *codes: str) -> str:
    with pytest.raises(HttpResponseError) as info:
        call()
    assert info.value.status_code == 403, info.value
    assert info.value.error is not None and info.value.error.code in codes, info.value.error
    return str(info.value.error.code)


@pytest.mark.parametrize("role", [OWNER, CONTRIBUTOR, ACR_PUSH], ids=["Owner", "Contributor", "AcrPush"])
def test_remediator_cannot_assign_a_broader_role(sandbox: Sandbox, role: str) -> None:
    _, registry, identity, _ = _ids(sandbox)
    _refused(lambda: _assign(sandbox, registry, role, identity), "AuthorizationFailed")


def test_remediator_may_assign_acr_pull_to_another_service_principal_at_the_registry(sandbox: Sandbox) -> None:
    """The control for the refusals around it: the one grant the delegation is for succeeds."""
    _, registry, identity, _ = _ids(sandbox)
    _assign(sandbox, registry, ACR_PULL, identity)


def test_remediator_cannot_assign_a_pull_role_to_itself(sandbox: Sandbox) -> None:
    _, registry, _, remediator = _ids(sandbox)
    _refused(lambda: _assign(sandbox, registry, ACR_PULL, remediator), "AuthorizationFailed")


def test_remediator_cannot_assign_a_pull_role_to_a_user(sandbox: Sandbox) -> None:
    _, registry, _, _ = _ids(sandbox)
    user = sandbox.world.deployer or USER_PRINCIPAL
    _refused(lambda: _assign(sandbox, registry, ACR_PULL, user, principal_type="User"), "AuthorizationFailed")


@pytest.mark.parametrize("where", ["subscription", "resource group"])
def test_remediator_cannot_assign_outside_the_registries_scopes(sandbox: Sandbox, where: str) -> None:
    sub, registry, identity, _ = _ids(sandbox)
    scope = f"/subscriptions/{sub}" if where == "subscription" else registry.split("/providers/")[0]
    _refused(lambda: _assign(sandbox, scope, ACR_PULL, identity), "AuthorizationFailed")


def test_remediator_cannot_delete_any_role_assignment(sandbox: Sandbox) -> None:
    sub, registry, identity, remediator = _ids(sandbox)
    # A pull assignment at the registry, made by its owner: the kind the remediator itself creates.
    sdk.authz(sandbox, REGISTRY_OWNER, sub).role_assignments.create(
        registry, str(uuid.uuid4()), RoleAssignmentCreateParameters(
            role_definition_id=f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL}",
            principal_id=identity, principal_type="ServicePrincipal"))
    at_registry = [a for a in sandbox.world.role_assignments()
                   if a["properties"]["scope"].lower() == registry.lower()]
    assert {a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1] for a in at_registry} >= {ACR_PULL,
                                                                                           RBAC_ADMINISTRATOR}
    client = sdk.authz(sandbox, remediator, sub)
    for assignment in at_registry:
        _refused(lambda a=assignment: client.role_assignments.delete_by_id(a["id"]), "AuthorizationFailed")
    assert len([a for a in sandbox.world.role_assignments()
                if a["properties"]["scope"].lower() == registry.lower()]) == len(at_registry)


def test_remediator_cannot_enable_public_network_access_on_a_registry(sandbox: Sandbox) -> None:
    sub, registry, _, remediator = _ids(sandbox)
    rg, name = registry.split("/")[4], registry.split("/")[-1]
    client = sdk.acr(sandbox, remediator, sub)
    _refused(lambda: client.registries.begin_update(
        rg, name, RegistryUpdateParameters(public_network_access="Enabled")).result(),
        "RequestDisallowedByPolicy")
