"""Blockers predicted, not hit (CONTRACT.md §1): locks, deny assignments and Azure Policy.

The gate on plain data (a rule per test, each failing without its rule), the sandbox's surfaces
and enforcement through the real SDK, and the bundled scenarios end to end with the sandbox's
request log showing that no refused write was ever sent.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.containerregistry.models import RegistryUpdateParameters

from remediation.actions import KINDS
from remediation.blockers import EVERYONE, condition_matches, policy_verdicts, registry_after, resolve_effect
from remediation.demo import demo_settings, engine_for
from remediation.model import Context, DenyAssignment, ManagementLock, PolicyAssignment
from remediation.plan import plan
from remediation.policy import WRITE_OPERATIONS, Gate, gate
from remediation.report import validate_report
from remediation.settings import Settings
from remediation.signal import parse_event
from sandbox import USER_PRINCIPAL, Sandbox, load_scenario, parse_scenario
from sandbox.policies import BUILTIN_DEFINITIONS

from . import sdk
from .test_plan import DEPLOYER, finding, make_ctx, make_registry, pull_finding
from .worlds import (
    ACR_PULL_ROLE,
    GROUP_ID,
    IDENTITY_ID,
    IDENTITY_PRINCIPAL,
    REGISTRY_ID,
    REMEDIATOR,
    RG_ID,
    SUB,
    failed_event,
    registry,
    world,
)

ROOT = Path(__file__).resolve().parents[1]
SUB_ID = f"/subscriptions/{SUB}"
OTHER_RG_ID = f"{SUB_ID}/resourceGroups/other-rg"
LOCK_ID = f"{RG_ID}/providers/Microsoft.Authorization/locks/rg-lock"
DENY_ID = f"{REGISTRY_ID}/providers/Microsoft.Authorization/denyAssignments/5d1e8f3a-7c2b-4f0e-9a61-3b8d2c4e6f01"
ME = Settings(remediator_principal_id=REMEDIATOR)
TRUSTED = finding("ACR_TRUSTED_SERVICES_DISABLED", registryId=REGISTRY_ID)
BYPASS = "Microsoft.ContainerRegistry/registries/networkRuleBypassOptions"
PUBLIC_ACCESS = "Microsoft.ContainerRegistry/registries/publicNetworkAccess"
MODIFY_PUBLIC_ACCESS = "a3701552-92ea-433e-9d17-33b7f1208fc9"
DENY_PUBLIC_ACCESS = "0fdf0491-d080-4575-b627-ad0e843cba0f"


def lock(scope: str = RG_ID, level: str = "ReadOnly") -> ManagementLock:
    return ManagementLock(f"{scope}/providers/Microsoft.Authorization/locks/rg-lock", level)


def deny(scope: str = REGISTRY_ID, *, principals: tuple[str, ...] = (EVERYONE,), exclude: tuple[str, ...] = (),
         actions: tuple[str, ...] = ("*",), not_actions: tuple[str, ...] = ("*/read",),
         children: bool = True) -> DenyAssignment:
    return DenyAssignment(f"{scope}/providers/Microsoft.Authorization/denyAssignments/d1", "stack deny", scope,
                          actions, not_actions, principals, exclude, children)


def policy(rule: dict[str, Any], effect: str | None, *, scope: str = SUB_ID, enforced: bool = True,
           not_scopes: tuple[str, ...] = ()) -> PolicyAssignment:
    return PolicyAssignment(f"{scope}/providers/Microsoft.Authorization/policyAssignments/p1", "p1", scope,
                            "/providers/Microsoft.Authorization/policyDefinitions/x", "network policy", enforced,
                            effect, rule, not_scopes)


def builtin(name: str, effect: str, **kw: Any) -> PolicyAssignment:
    definition = BUILTIN_DEFINITIONS[name]["properties"]
    resolved = resolve_effect(definition["policyRule"], definition["parameters"], {"effect": {"value": effect}})
    return replace(policy(definition["policyRule"], resolved, **kw),
                   definition_id=BUILTIN_DEFINITIONS[name]["id"])


DENY_BYPASS_RULE = {"if": {"allOf": [{"field": "type", "equals": "Microsoft.ContainerRegistry/registries"},
                                     {"field": BYPASS, "equals": "AzureServices"}]},
                    "then": {"effect": "[parameters('effect')]"}}


def decide(findings: list[Any], ctx: Context, settings: Settings = ME) -> Gate:
    return gate(plan(findings, ctx), ctx, settings)


def statuses(result: Gate) -> dict[str, str]:
    return {a.kind: a.status for a in result.actions}


def detail(result: Gate, kind: str) -> str:
    return next(a.detail for a in result.actions if a.kind == kind)


def pull_ctx(**blockers: Any) -> Context:
    return replace(make_ctx(), **blockers)


def network_ctx(public_access: str = "Disabled", **blockers: Any) -> Context:
    restricted = replace(make_registry(restricted=True, bypass="None"), public_network_access=public_access,
                         default_action="Deny")
    return replace(make_ctx(registries=[restricted]), **blockers)


# --- locks ---------------------------------------------------------------------------------------


def test_without_blockers_both_writes_are_planned() -> None:
    assert statuses(decide([pull_finding()], pull_ctx())) == {"assign-role": "planned", "redeploy": "planned"}


def test_a_readonly_lock_on_the_registrys_resource_group_skips_assign_role_naming_the_lock() -> None:
    result = decide([pull_finding()], pull_ctx(locks=(lock(),)))
    assert statuses(result)["assign-role"] == "skipped"
    assert LOCK_ID in detail(result, "assign-role") and "ReadOnly" in detail(result, "assign-role")
    assert result.to_apply == ()


def test_a_readonly_lock_on_the_subscription_blocks_too() -> None:
    result = decide([pull_finding()], pull_ctx(locks=(lock(SUB_ID),)))
    assert statuses(result)["assign-role"] == "skipped"


def test_a_cannotdelete_lock_does_not_block_a_write() -> None:
    result = decide([pull_finding()], pull_ctx(locks=(lock(level="CanNotDelete"), lock(SUB_ID, "CanNotDelete"))))
    assert statuses(result) == {"assign-role": "planned", "redeploy": "planned"}


def test_a_readonly_lock_on_another_resource_group_does_not_block() -> None:
    assert statuses(decide([pull_finding()], pull_ctx(locks=(lock(OTHER_RG_ID),))))["assign-role"] == "planned"


def test_a_readonly_lock_on_the_group_alone_blocks_the_redeploy_not_the_role() -> None:
    result = decide([pull_finding()], pull_ctx(locks=(lock(GROUP_ID),)))
    assert statuses(result) == {"assign-role": "planned", "redeploy": "skipped"}
    assert "ScopeLocked" in detail(result, "redeploy")


def test_a_readonly_lock_on_the_registry_blocks_the_network_fix() -> None:
    result = decide([TRUSTED], network_ctx(locks=(lock(REGISTRY_ID),)))
    assert statuses(result)["enable-trusted-services"] == "skipped"


def test_a_blocked_action_is_skipped_in_a_dry_run_too() -> None:
    result = decide([pull_finding()], pull_ctx(locks=(lock(),)), replace(ME, dry_run=True))
    assert statuses(result)["assign-role"] == "skipped"


# --- deny assignments ----------------------------------------------------------------------------


def test_a_deny_assignment_for_everyone_skips_assign_role_naming_it() -> None:
    result = decide([pull_finding()], pull_ctx(deny_assignments=(deny(exclude=(DEPLOYER,)),)))
    assert statuses(result)["assign-role"] == "skipped"
    assert "stack deny" in detail(result, "assign-role") and "/denyAssignments/d1" in detail(result, "assign-role")


def test_a_deny_assignment_excluding_the_apps_identity_does_not_block() -> None:
    result = decide([pull_finding()], pull_ctx(deny_assignments=(deny(exclude=(REMEDIATOR.upper(),)),)))
    assert statuses(result)["assign-role"] == "planned"


def test_a_deny_assignment_whose_not_actions_cover_the_write_does_not_block() -> None:
    spared = deny(not_actions=("*/read", "Microsoft.Authorization/roleAssignments/*"))
    assert statuses(decide([pull_finding()], pull_ctx(deny_assignments=(spared,))))["assign-role"] == "planned"


def test_a_deny_assignment_that_does_not_apply_to_child_scopes_spares_the_registry() -> None:
    at_group_only = deny(RG_ID, children=False)
    assert statuses(decide([pull_finding()], pull_ctx(deny_assignments=(at_group_only,))))["assign-role"] == "planned"


def test_a_deny_assignment_naming_the_app_blocks_only_what_it_covers() -> None:
    redeploys = deny(RG_ID, principals=(REMEDIATOR,), actions=("Microsoft.ContainerInstance/containerGroups/write",),
                     not_actions=())
    result = decide([pull_finding()], pull_ctx(deny_assignments=(redeploys,)))
    assert statuses(result) == {"assign-role": "planned", "redeploy": "skipped"}
    assert "DenyAssignmentAuthorizationFailed" in detail(result, "redeploy")


def test_a_deny_assignment_on_the_identity_blocks_the_redeploy_that_assigns_it() -> None:
    on_identity = deny(IDENTITY_ID, actions=("Microsoft.ManagedIdentity/userAssignedIdentities/*",), not_actions=())
    result = decide([pull_finding()], pull_ctx(deny_assignments=(on_identity,)))
    assert statuses(result) == {"assign-role": "planned", "redeploy": "skipped"}
    assert "userAssignedIdentities/assign/action" in detail(result, "redeploy")


def test_a_deny_assignment_for_another_principal_does_not_block() -> None:
    other = deny(principals=(IDENTITY_PRINCIPAL,))
    assert statuses(decide([pull_finding()], pull_ctx(deny_assignments=(other,))))["assign-role"] == "planned"


def test_without_the_apps_own_id_only_an_unconditional_everyone_deny_counts() -> None:
    unknown = Settings()
    everyone = decide([pull_finding()], pull_ctx(deny_assignments=(deny(),)), unknown)
    assert statuses(everyone)["assign-role"] == "skipped"
    with_exclusions = decide([pull_finding()], pull_ctx(deny_assignments=(deny(exclude=(DEPLOYER,)),)), unknown)
    assert statuses(with_exclusions)["assign-role"] == "planned"


# --- Azure Policy --------------------------------------------------------------------------------


def test_a_deny_policy_on_the_bypass_skips_the_network_fix_and_is_a_warning() -> None:
    result = decide([TRUSTED], network_ctx(policy_assignments=(policy(DENY_BYPASS_RULE, "Deny"),)))
    assert statuses(result)["enable-trusted-services"] == "skipped"
    assert "RequestDisallowedByPolicy" in detail(result, "enable-trusted-services")
    (warning,) = result.warnings
    assert "network policy" in warning and "/policyAssignments/p1" in warning and "effect Deny" in warning


def test_a_modify_policy_on_public_access_is_a_warning_and_the_fix_goes_ahead() -> None:
    modify = builtin(MODIFY_PUBLIC_ACCESS, "Modify")
    result = decide([TRUSTED], network_ctx("Enabled", policy_assignments=(modify,)))
    assert statuses(result)["enable-trusted-services"] == "planned"
    (warning,) = result.warnings
    assert "effect Modify" in warning and PUBLIC_ACCESS in warning and "'Disabled'" in warning
    assert MODIFY_PUBLIC_ACCESS in warning


def test_a_policy_whose_rule_the_write_leaves_unmatched_says_nothing() -> None:
    # public access already off: the built-in Deny on public access does not match the registry
    result = decide([TRUSTED], network_ctx("Disabled", policy_assignments=(builtin(DENY_PUBLIC_ACCESS, "Deny"),)))
    assert statuses(result)["enable-trusted-services"] == "planned" and result.warnings == ()


def test_the_builtin_deny_on_public_access_blocks_a_patch_of_a_publicly_reachable_registry() -> None:
    # Deny judges the resource as the request would leave it, whatever property the request sets
    result = decide([TRUSTED], network_ctx("Enabled", policy_assignments=(builtin(DENY_PUBLIC_ACCESS, "Deny"),)))
    assert statuses(result)["enable-trusted-services"] == "skipped"


@pytest.mark.parametrize("kw", [{"effect": "Audit"}, {"effect": "Disabled"}, {"effect": "Deny", "enforced": False},
                                {"effect": "Deny", "not_scopes": (RG_ID,)}, {"effect": "Deny", "scope": OTHER_RG_ID}],
                         ids=["audit", "disabled", "do-not-enforce", "not-scope", "other-scope"])
def test_a_policy_that_would_not_act_on_the_registry_says_nothing(kw: dict[str, Any]) -> None:
    effect = kw.pop("effect")
    result = decide([TRUSTED], network_ctx(policy_assignments=(policy(DENY_BYPASS_RULE, effect, **kw),)))
    assert statuses(result)["enable-trusted-services"] == "planned" and result.warnings == ()


def test_a_policy_about_other_registry_properties_says_nothing() -> None:
    # as the built-in ACR_AdminAccountDisabled_Modify does: it matches the PATCH, but changes another property
    admin = "Microsoft.ContainerRegistry/registries/adminUserEnabled"
    modify_admin = {"if": {"allOf": [{"field": "type", "equals": "Microsoft.ContainerRegistry/registries"},
                                     {"field": admin, "notEquals": False}]},
                    "then": {"effect": "modify", "details": {
                        "operations": [{"operation": "addOrReplace", "field": admin, "value": False}]}}}
    result = decide([TRUSTED], network_ctx(policy_assignments=(policy(modify_admin, "Modify"),)))
    assert statuses(result)["enable-trusted-services"] == "planned" and result.warnings == ()


def test_a_rule_the_evaluator_cannot_read_is_a_may_warning_not_a_skip() -> None:
    counted = {"if": {"allOf": [{"field": "type", "equals": "Microsoft.ContainerRegistry/registries"},
                                {"count": {"field": f"{BYPASS}[*]"}, "greater": 0}]},
               "then": {"effect": "Deny"}}
    result = decide([TRUSTED], network_ctx(policy_assignments=(policy(counted, "Deny"),)))
    assert statuses(result)["enable-trusted-services"] == "planned"
    (warning,) = result.warnings
    assert " may deny " in warning


def test_the_effect_is_the_assignments_parameter_else_the_definitions_default() -> None:
    rule = {"then": {"effect": "[parameters('effect')]"}}
    defaults = {"effect": {"defaultValue": "Audit"}}
    assert resolve_effect(rule, defaults, {"effect": {"value": "Deny"}}) == "Deny"
    assert resolve_effect(rule, defaults, {}) == "Audit"
    assert resolve_effect({"then": {"effect": "Modify"}}, {}, {}) == "Modify"
    assert resolve_effect({"then": {}}, {}, {}) is None


def test_conditions_follow_azure_policy_semantics() -> None:
    after = registry_after(make_registry(restricted=True, bypass="None"), {"networkRuleBypassOptions": "AzureServices"})
    assert condition_matches({"field": BYPASS, "equals": "azureservices"}, after) is True  # case-insensitive
    assert condition_matches({"field": BYPASS, "notEquals": "AzureServices"}, after) is False
    assert condition_matches({"field": f"{BYPASS}.missing", "notEquals": "x"}, after) is True
    assert condition_matches({"field": f"{BYPASS}.missing", "exists": "false"}, after) is True
    assert condition_matches({"field": PUBLIC_ACCESS, "in": ["Disabled"]}, after) is True
    assert condition_matches({"not": {"field": "type", "like": "Microsoft.ContainerRegistry/*"}}, after) is False
    unreadable = {"anyOf": [{"value": "x", "equals": "x"}, {"field": "type", "equals": "y"}]}
    assert condition_matches(unreadable, after) is None
    assert [v.effect for v in policy_verdicts([policy(DENY_BYPASS_RULE, "Deny")], after)] == ["deny"]


# --- the sandbox ---------------------------------------------------------------------------------


def lock_resource(scope: str, level: str, name: str = "the-lock") -> dict[str, Any]:
    return {"id": f"{scope}/providers/Microsoft.Authorization/locks/{name}", "name": name,
            "type": "Microsoft.Authorization/locks", "properties": {"level": level, "notes": "why"}}


def deny_resource(scope: str = REGISTRY_ID, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"id": f"{scope}/providers/Microsoft.Authorization/denyAssignments/d1", "name": "d1",
            "type": "Microsoft.Authorization/denyAssignments",
            "properties": {"denyAssignmentName": "stack deny", "scope": scope,
                           "permissions": [{"actions": ["*"], "notActions": ["*/read"]}],
                           "principals": [{"id": EVERYONE, "type": "SystemDefined"}],
                           "excludePrincipals": [{"id": p, "type": "User"} for p in exclude]}}


def sandbox_with(*extra: dict[str, Any], remediator: bool = False) -> Sandbox:
    return Sandbox(parse_scenario(world(resources=[registry(), *extra], remediator=remediator)))


def _error(exc: pytest.ExceptionInfo[HttpResponseError]) -> tuple[int | None, str | None, str]:
    err = exc.value
    return err.status_code, err.error.code if err.error else None, err.error.message if err.error else ""


def _assign(sb: Sandbox, principal: str = USER_PRINCIPAL, name: str = "0b0b0b0b-0000-4000-8000-000000000001") -> Any:
    return sdk.authz(sb, principal).role_assignments.create(REGISTRY_ID, name, RoleAssignmentCreateParameters(
        role_definition_id=ACR_PULL_ROLE, principal_id=IDENTITY_PRINCIPAL, principal_type="ServicePrincipal"))


def test_sandbox_a_readonly_lock_answers_scope_locked_for_writes_and_role_assignments() -> None:
    with sandbox_with(lock_resource(RG_ID, "ReadOnly")) as sb:
        with pytest.raises(HttpResponseError) as exc:
            sdk.acr(sb).registries.begin_update(RG_ID.rsplit("/", 1)[-1], "myacr", RegistryUpdateParameters(
                network_rule_bypass_options="AzureServices")).result()
        status, code, message = _error(exc)
        assert (status, code) == (409, "ScopeLocked")
        assert message == (f"The scope '{REGISTRY_ID}' cannot perform write operation because following scope(s) "
                           f"are locked: '{RG_ID}'. Please remove the lock and try again.")
        with pytest.raises(HttpResponseError) as exc:
            _assign(sb)
        assert _error(exc)[:2] == (409, "ScopeLocked")
        assert sdk.acr(sb).registries.get(RG_ID.rsplit("/", 1)[-1], "myacr").name == "myacr"  # reads pass


def test_sandbox_a_cannotdelete_lock_allows_writes_and_refuses_deletes() -> None:
    with sandbox_with(lock_resource(REGISTRY_ID, "CanNotDelete")) as sb:
        created = _assign(sb)
        with pytest.raises(HttpResponseError) as exc:
            sdk.authz(sb).role_assignments.delete_by_id(created.id)
        status, code, message = _error(exc)
        assert (status, code) == (409, "ScopeLocked") and "cannot perform delete operation" in message


def test_sandbox_lists_locks_at_a_scope_and_below() -> None:
    locks = [lock_resource(SUB_ID, "ReadOnly", "sub"), lock_resource(RG_ID, "CanNotDelete", "rg"),
             lock_resource(REGISTRY_ID, "ReadOnly", "registry")]
    with sandbox_with(*locks) as sb:
        client = sdk.resources(sb)

        def names(scope: str) -> list[str]:
            response = client.send_request(HttpRequest(
                "GET", f"{scope}/providers/Microsoft.Authorization/locks", params={"api-version": "2020-05-01"}))
            assert response.status_code == 200
            return sorted(item["name"] for item in response.json()["value"])

        assert names(SUB_ID) == ["registry", "rg", "sub"]
        assert names(RG_ID) == ["registry", "rg"]
        assert names(REGISTRY_ID) == ["registry"]


def test_sandbox_a_deny_assignment_refuses_a_caller_its_roles_allow() -> None:
    with sandbox_with(deny_resource(exclude=(REMEDIATOR,))) as sb:
        with pytest.raises(HttpResponseError) as exc:
            _assign(sb)  # the sandbox's user may do anything its roles allow, and is not excluded
        status, code, message = _error(exc)
        assert (status, code) == (403, "DenyAssignmentAuthorizationFailed")
        assert message == (
            f"The client '{USER_PRINCIPAL}' with object id '{USER_PRINCIPAL}' has permission to perform action "
            f"'Microsoft.Authorization/roleAssignments/write' on scope '{REGISTRY_ID}/providers/"
            "Microsoft.Authorization/roleAssignments/0b0b0b0b-0000-4000-8000-000000000001'; however, the access is "
            f"denied because of the deny assignment with name 'stack deny' and Id 'd1' at scope '{REGISTRY_ID}'.")
        assert _assign(sb, REMEDIATOR, "0b0b0b0b-0000-4000-8000-000000000002").principal_id == IDENTITY_PRINCIPAL


def test_sandbox_lists_deny_assignments_at_or_above_a_scope_through_the_sdk() -> None:
    with sandbox_with(deny_resource(), deny_resource(RG_ID) | {"id": f"{RG_ID}/providers/Microsoft.Authorization/"
                                                                      "denyAssignments/d2", "name": "d2"}) as sb:
        client = sdk.authz(sb).deny_assignments
        assert sorted(d.name for d in client.list_for_scope(REGISTRY_ID, filter="atScope()")) == ["d1", "d2"]
        assert sorted(d.name for d in client.list_for_scope(RG_ID, filter="atScope()")) == ["d2"]
        (found,) = [d for d in client.list_for_scope(SUB_ID) if d.name == "d1"]
        assert found.principals[0].id == EVERYONE and found.permissions[0].not_actions == ["*/read"]


def test_sandbox_serves_policy_assignments_and_builtin_definitions() -> None:
    assigned = {"id": f"{RG_ID}/providers/Microsoft.Authorization/policyAssignments/pa",
                "type": "Microsoft.Authorization/policyAssignments",
                "properties": {"policyDefinitionId": BUILTIN_DEFINITIONS[MODIFY_PUBLIC_ACCESS]["id"]}}
    with sandbox_with(assigned) as sb:
        client = sdk.resources(sb)

        def get(path: str) -> Any:
            response = client.send_request(HttpRequest("GET", path, params={"api-version": "2023-04-01"}))
            assert response.status_code == 200, response.text()
            return response.json()

        listed = get(f"{SUB_ID}/providers/Microsoft.Authorization/policyAssignments")["value"]
        assert [a["properties"]["scope"] for a in listed] == [RG_ID]
        assert get(f"{REGISTRY_ID}/providers/Microsoft.Authorization/policyAssignments")["value"] != []
        definition = get(BUILTIN_DEFINITIONS[MODIFY_PUBLIC_ACCESS]["id"])
        assert definition["properties"]["policyRule"]["then"]["details"]["operations"][0]["value"] == "Disabled"


def _bypass_patch(sb: Sandbox, **props: Any) -> Any:
    return sdk.acr(sb).registries.begin_update("myResourceGroup", "myacr", RegistryUpdateParameters(**props)).result()


def test_sandbox_an_enforced_deny_policy_refuses_the_write_it_matches_only() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "policy-disables-trusted-services.json")
    with Sandbox(scenario) as sb:
        with pytest.raises(HttpResponseError) as exc:
            _bypass_patch(sb, network_rule_bypass_options="AzureServices")
        status, code, message = _error(exc)
        assert (status, code) == (403, "RequestDisallowedByPolicy")
        assert message.startswith("Resource 'myacr' was disallowed by policy. Policy identifiers: ")
        assert "/policyAssignments/deny-acr-bypass" in message and "acr-deny-trusted-services-bypass" in message
        assert _bypass_patch(sb, admin_user_enabled=False).network_rule_bypass_options == "None"


@pytest.mark.parametrize("change", [{"enforcementMode": "DoNotEnforce"}, {"parameters": {"effect": {"value": "Audit"}}},
                                    {"notScopes": [f"{SUB_ID}/resourceGroups/myResourceGroup"]}],
                         ids=["do-not-enforce", "audit", "not-scope"])
def test_sandbox_a_policy_that_does_not_deny_lets_the_write_through(change: dict[str, Any]) -> None:
    data = bundled("policy-disables-trusted-services")
    (assigned,) = [r for r in data["resources"] if r["type"] == "Microsoft.Authorization/policyAssignments"]
    assigned["properties"].update(change)
    with Sandbox(parse_scenario(data)) as sb:
        assert _bypass_patch(sb, network_rule_bypass_options="AzureServices").network_rule_bypass_options == (
            "AzureServices")


# --- end to end: predicted, so never sent --------------------------------------------------------


def run_scenario(data: dict[str, Any]) -> tuple[dict[str, Any], list[Any], str]:
    scenario = parse_scenario(data)
    with Sandbox(scenario) as sb:
        event = failed_event(sb, scenario)
        engine = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True)
        report = engine.run(parse_event(event), trigger="eventgrid")
        engine.clients.close()
        return report, list(sb.world.request_log), scenario.remediator["principalId"]


def bundled(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "scenarios" / f"{name}.json").read_text())
    return data


def refused_or_written(log: list[Any], remediator: str) -> list[Any]:
    """The remediator's writes that reached the sandbox, and anything it was refused."""
    return [r for r in log if (r.caller or "").lower() == remediator.lower()
            and (r.method in ("PUT", "PATCH", "DELETE") or r.status in (403, 409))]


@pytest.mark.parametrize(("name", "kind", "named"), [
    ("locked-registry", "assign-role", "/providers/Microsoft.Authorization/locks/registry-rg-readonly"),
    ("deny-assignment", "assign-role", "5d1e8f3a-7c2b-4f0e-9a61-3b8d2c4e6f01"),
    ("policy-disables-trusted-services", "enable-trusted-services", "/policyAssignments/deny-acr-bypass"),
])
def test_a_predicted_blocker_sends_no_write(name: str, kind: str, named: str) -> None:
    report, log, remediator = run_scenario(bundled(name))
    validate_report(report)
    assert report["outcome"] == "diagnosed"
    (action,) = [a for a in report["actions"] if a["kind"] == kind]
    assert action["status"] == "skipped" and named in action["detail"]
    assert refused_or_written(log, remediator) == []


def test_the_policy_scenario_names_its_assignment_as_a_warning() -> None:
    report, _, _ = run_scenario(bundled("policy-disables-trusted-services"))
    (warning,) = report["warnings"]
    assert "Deny trusted-services bypass on registries" in warning and "effect Deny" in warning


def test_without_the_lock_the_same_world_remediates() -> None:
    data = bundled("locked-registry")
    data["resources"] = [r for r in data["resources"] if r["type"] != "Microsoft.Authorization/locks"]
    report, _, _ = run_scenario(data)
    assert report["outcome"] == "remediated"


def test_a_cannotdelete_lock_on_the_registrys_group_does_not_block_the_fix() -> None:
    data = bundled("locked-registry")
    for resource in data["resources"]:
        if resource["type"] == "Microsoft.Authorization/locks":
            resource["properties"]["level"] = "CanNotDelete"
    report, log, _ = run_scenario(data)
    assert report["outcome"] == "remediated"
    assert not [r for r in log if r.status == 409]


def test_a_modify_policy_on_public_access_warns_and_the_fix_is_applied() -> None:
    data = copy.deepcopy(bundled("trusted-services-disabled"))
    (reg,) = [r for r in data["resources"] if r["type"] == "Microsoft.ContainerRegistry/registries"]
    reg["properties"]["publicNetworkAccess"] = "Enabled"  # firewalled by its default action Deny only
    data["resources"].append({
        "id": f"{SUB_ID}/providers/Microsoft.Authorization/policyAssignments/acr-no-public-access",
        "type": "Microsoft.Authorization/policyAssignments",
        "properties": {"displayName": "Registries without public access",
                       "policyDefinitionId": BUILTIN_DEFINITIONS[MODIFY_PUBLIC_ACCESS]["id"]}})
    report, _, _ = run_scenario(data)
    assert report["outcome"] == "remediated"
    (warning,) = report["warnings"]
    assert "Registries without public access" in warning and "effect Modify" in warning


def test_the_loaded_bundled_scenarios_hold_their_blockers() -> None:
    kinds = {name: {r["type"] for r in load_scenario(ROOT / "scenarios" / f"{name}.json").resources}
             for name in ("locked-registry", "deny-assignment", "policy-disables-trusted-services")}
    assert "Microsoft.Authorization/locks" in kinds["locked-registry"]
    assert "Microsoft.Authorization/denyAssignments" in kinds["deny-assignment"]
    assert {"Microsoft.Authorization/policyAssignments",
            "Microsoft.Authorization/policyDefinitions"} <= kinds["policy-disables-trusted-services"]


def test_a_lock_that_could_not_be_read_is_noted_and_azures_refusal_reported() -> None:
    data = bundled("locked-registry")
    data["behaviour"]["faults"] = [{"match": "GET */providers/Microsoft.Authorization/locks", "status": 403,
                                    "code": "AuthorizationFailed"}]
    report, _, _ = run_scenario(data)
    assert any(note.startswith("locks in subscription ") for note in report["notes"])
    (grant,) = [a for a in report["actions"] if a["kind"] == "assign-role"]
    assert grant["status"] == "failed" and "ScopeLocked" in grant["detail"]
    assert report["outcome"] == "failed"


def test_every_writing_kind_names_the_operation_deny_assignments_are_checked_for() -> None:
    assert {name for name, kind in KINDS.items() if kind.writes} == set(WRITE_OPERATIONS)
