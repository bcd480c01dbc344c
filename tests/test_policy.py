"""The policy gate on plain data: every rule, and every invariant refusing a tampered action."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from remediation.actions.assign_role import (
    ACR_PULL_ROLE_GUID,
    REPOSITORY_READER_ROLE_GUID,
    assignment_name,
    repository_condition,
)
from remediation.model import Action, Context, Finding, RbacRules, RoleAssignment, RoleDefinition, WriteRecord
from remediation.plan import plan
from remediation.policy import (
    REPLAYED_DEFINITION_NOTE,
    SWEEP_NOTE,
    Gate,
    early_refusal,
    gate,
    invariant_violation,
)
from remediation.settings import Settings
from tests.test_plan import (
    DEPLOYER,
    FAILED_AT,
    FAILED_CORRELATION,
    OTHER_PRINCIPAL,
    REGISTRY2_ID,
    failed_write,
    finding,
    make_ctx,
    make_registry,
    pull_finding,
)
from tests.worlds import GROUP_ID, IDENTITY_PRINCIPAL, REGISTRY_ID, REMEDIATOR, RG, SUB, SUB2, group_body

OWNER_GUID = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
TRUSTED = finding("ACR_TRUSTED_SERVICES_DISABLED", registryId=REGISTRY_ID)


def restricted_ctx(**kwargs: Any) -> Context:
    return make_ctx(registries=[make_registry(restricted=True, bypass="None")], **kwargs)


def decide(
    findings: list[Finding], ctx: Context | None = None, settings: Settings | None = None, **kwargs: Any
) -> Gate:
    ctx = ctx or restricted_ctx()
    return gate(plan(findings, ctx), ctx, settings or Settings(), **kwargs)


def statuses(result: Gate) -> dict[str, str]:
    return {a.kind: a.status for a in result.actions}


def detail_of(result: Gate, kind: str) -> str:
    return next(a.detail for a in result.actions if a.kind == kind)


# --- the normal path and dry run ------------------------------------------------------------------


def test_allowed_fixes_are_planned_and_applied_in_order() -> None:
    result = decide([pull_finding(), TRUSTED], now=datetime(2024, 1, 1, tzinfo=UTC))
    assert statuses(result) == {"assign-role": "planned", "enable-trusted-services": "planned", "redeploy": "planned"}
    assert [a.kind for a in result.to_apply] == ["assign-role", "enable-trusted-services", "redeploy"]
    assert result.skip_reason is None and not result.dry_run
    assert result.decided_at.startswith("2024-01-01")


def test_dry_run_plans_everything_and_applies_nothing() -> None:
    result = decide([pull_finding(), TRUSTED], settings=Settings(dry_run=True))
    assert result.dry_run
    assert set(statuses(result).values()) == {"planned"}
    assert result.to_apply == ()


def test_dry_run_still_shows_what_policy_would_refuse() -> None:
    result = decide([pull_finding(), TRUSTED], settings=Settings(dry_run=True, fix_trusted_services=False))
    assert statuses(result)["enable-trusted-services"] == "skipped"
    assert statuses(result)["assign-role"] == "planned"


# --- whole-run rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scopes, allowed",
    [
        ((f"/subscriptions/{SUB}",), True),
        ((f"/SUBSCRIPTIONS/{SUB.upper()}/resourcegroups/{RG.upper()}",), True),
        ((f"/subscriptions/{SUB2}",), False),
        ((f"/subscriptions/{SUB}/resourceGroups/other-rg",), False),
        ((f"/subscriptions/{SUB}/resourceGroups/{RG}-2",), False),  # a prefix of a segment is not a match
    ],
)
def test_resource_outside_the_allowed_scopes_skips_the_run(scopes: tuple[str, ...], allowed: bool) -> None:
    result = decide([pull_finding()], settings=Settings(allowed_scopes=scopes))
    if allowed:
        assert result.skip_reason is None and result.to_apply
    else:
        assert result.skip_reason and "REMEDIATION_ALLOWED_SCOPES" in result.skip_reason
        assert set(statuses(result).values()) == {"skipped"}
        assert result.to_apply == ()


@pytest.mark.parametrize("where", ["definition", "existing"])
@pytest.mark.parametrize("value, opted", [("off", True), ("OFF", True), ("on", False), ("", False)])
def test_opt_out_tag_on_the_group_skips_the_run(where: str, value: str, opted: bool) -> None:
    tags = {"ACI-Remediation": value}
    if where == "definition":
        ctx = restricted_ctx(body=group_body(tags=tags))
    else:
        ctx = restricted_ctx(existing_group={"id": GROUP_ID, "tags": tags})
    result = decide([pull_finding()], ctx)
    assert (result.skip_reason is not None) == opted
    if opted:
        assert "aci-remediation=off" in result.skip_reason


def test_custom_opt_out_tag_name_is_honoured() -> None:
    ctx = restricted_ctx(body=group_body(tags={"no-heal": "off", "aci-remediation": "on"}))
    assert decide([pull_finding()], ctx).skip_reason is None
    assert decide([pull_finding()], ctx, Settings(opt_out_tag="no-heal")).skip_reason


def test_loop_guard_skips_failures_of_the_remediators_own_writes() -> None:
    settings = Settings(remediator_principal_id=REMEDIATOR)
    own = decide([pull_finding()], restricted_ctx(caller=REMEDIATOR.upper()), settings)
    assert own.skip_reason and "loop guard" in own.skip_reason
    someone = decide([pull_finding()], restricted_ctx(caller=OTHER_PRINCIPAL), settings)
    assert someone.skip_reason is None
    unknown_me = decide([pull_finding()], restricted_ctx(caller=REMEDIATOR))
    assert unknown_me.skip_reason is None


@pytest.mark.parametrize(
    "settings, caller, reason",
    [
        (Settings(allowed_scopes=(f"/subscriptions/{SUB2}",)), None, "outside REMEDIATION_ALLOWED_SCOPES"),
        (Settings(remediator_principal_id=REMEDIATOR), REMEDIATOR.upper(), "loop guard"),
        (Settings(allowed_scopes=(f"/subscriptions/{SUB}",), remediator_principal_id=REMEDIATOR), OTHER_PRINCIPAL,
         None),
        (Settings(), REMEDIATOR, None),
    ],
)
def test_early_refusal_decides_scope_and_loop_guard_from_the_signal_alone(
    settings: Settings, caller: str | None, reason: str | None
) -> None:
    refusal = early_refusal(restricted_ctx(caller=caller).signal, settings, trigger="eventgrid")
    assert (refusal is None) == (reason is None)
    if reason:
        assert reason in (refusal or "")


# --- the kind of run: sweep, resume, replayed definition ---------------------------------------------


def sweep_ctx(**kwargs: Any) -> Context:
    """A sweep: no failed write, the deployer is whoever last wrote the group."""
    ctx = restricted_ctx(**kwargs)
    deployed = replace(failed_write(), status="Succeeded", correlation_id="deploy")
    return replace(ctx, signal=replace(ctx.signal, schema="sweep"), failed_write=None, group_writes=(deployed,))


def test_a_sweep_never_redeploys_but_still_fixes() -> None:
    result = decide([pull_finding(), finding("ACI_API_VERSION_TOO_OLD")], sweep_ctx(api_version="2021-03-01"))
    assert [(a.kind, a.status) for a in result.actions] == [("assign-role", "planned")]
    assert [a.kind for a in result.to_apply] == ["assign-role"]
    assert result.notes == (SWEEP_NOTE,)
    assert decide([pull_finding()]).notes == ()  # only a sweep leaves the redeploy out


def test_a_sweep_drops_a_redeploy_even_when_the_run_is_refused() -> None:
    ctx = sweep_ctx(body=group_body(tags={"aci-remediation": "off"}))
    result = decide([pull_finding()], ctx)
    assert result.skip_reason and [a.kind for a in result.actions] == ["assign-role"]
    assert result.notes == (SWEEP_NOTE,)


def test_a_resumed_run_gets_the_redeploy_it_still_owes() -> None:
    result = decide([], resume=True)
    (redeploy,) = result.to_apply
    assert (redeploy.kind, redeploy.cause, redeploy.target) == ("redeploy", "resume", GROUP_ID)
    assert redeploy.params == {"apiVersion": "2023-05-01"}
    assert decide([]).actions == ()  # without resume, nothing to do


def test_a_resume_adds_no_second_redeploy_and_none_without_a_definition() -> None:
    planned = decide([pull_finding()], resume=True)
    assert [a.kind for a in planned.to_apply] == ["assign-role", "redeploy"]
    assert next(a for a in planned.actions if a.kind == "redeploy").cause == ""
    assert decide([], make_ctx(with_definition=False), resume=True).actions == ()


def test_a_resumed_sweep_still_does_not_redeploy() -> None:
    result = decide([], sweep_ctx(), resume=True)
    assert result.actions == () and result.notes == (SWEEP_NOTE,)


def test_a_replayed_definition_is_diagnosed_and_drives_no_write() -> None:
    ctx = restricted_ctx(source="replay")
    result = decide([pull_finding(), TRUSTED], ctx)
    assert set(statuses(result).values()) == {"skipped"}
    assert all(REPLAYED_DEFINITION_NOTE in a.detail for a in result.actions)
    assert result.to_apply == () and result.skip_reason is None


def test_a_replayed_proposal_is_not_deployed_either() -> None:
    body = ambiguous_ctx_body()
    result = decide([AMBIGUOUS], restricted_ctx(body=body, source="replay"), Settings(apply_definition_fixes=True))
    assert statuses(result) == {"propose-definition": "planned", "redeploy": "skipped"}
    assert REPLAYED_DEFINITION_NOTE in detail_of(result, "redeploy")
    assert result.redeploy_definition is None and result.to_apply == ()


def test_a_replayed_definition_may_drive_writes_when_the_setting_allows() -> None:
    ctx = restricted_ctx(source="replay")
    result = decide([pull_finding()], ctx, Settings(redeploy_replayed_definitions=True))
    assert [a.kind for a in result.to_apply] == ["assign-role", "redeploy"]


def test_a_dry_run_on_a_replayed_definition_lists_the_plan_as_before() -> None:
    result = decide([pull_finding()], restricted_ctx(source="replay"), Settings(dry_run=True))
    assert set(statuses(result).values()) == {"planned"} and result.to_apply == ()


# --- per-action rules ---------------------------------------------------------------------------------


def test_opt_out_tag_on_the_registry_skips_its_actions_and_the_pointless_redeploy() -> None:
    ctx = make_ctx(registries=[make_registry(restricted=True, bypass="None", tags={"aci-remediation": "Off"})])
    result = decide([pull_finding(), TRUSTED], ctx)
    assert result.skip_reason is None
    assert statuses(result) == {"assign-role": "skipped", "enable-trusted-services": "skipped", "redeploy": "skipped"}
    assert "opt-out tag" in detail_of(result, "assign-role")
    assert "nothing changed" in detail_of(result, "redeploy")


def test_trusted_services_setting_false_only_reports_the_network_fix() -> None:
    result = decide([pull_finding(), TRUSTED], settings=Settings(fix_trusted_services=False))
    assert statuses(result) == {"assign-role": "planned", "enable-trusted-services": "skipped", "redeploy": "planned"}
    assert "REMEDIATION_FIX_TRUSTED_SERVICES" in detail_of(result, "enable-trusted-services")


@pytest.mark.parametrize("attempts, blocked", [(0, False), (2, False), (3, True), (7, True)])
def test_attempt_limit_skips_the_fixes(attempts: int, blocked: bool) -> None:
    result = decide([pull_finding(), TRUSTED], attempts_in_window=attempts)
    assert (result.to_apply == ()) == blocked
    if blocked:
        assert "REMEDIATION_MAX_ATTEMPTS=3" in detail_of(result, "assign-role")


SUBNET = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/aci"


@pytest.mark.parametrize("changes", [
    {"subnetIds": [{"id": SUBNET}]},
    {"osType": "Windows"},
], ids=["vnet-injected", "windows"])
def test_vnet_injected_and_windows_groups_are_fixed_like_any_other(changes: dict[str, Any]) -> None:
    # The ACI article (2026-07) and the troubleshooting guide (2026-09) support both with a
    # user-assigned identity; the 2023 guide's limitations (CONTRACT.md §1, retired codes) are gone.
    body = group_body()
    body["properties"].update(changes)
    result = decide([pull_finding(), TRUSTED], restricted_ctx(body=body))
    assert [a.kind for a in result.to_apply] == ["assign-role", "enable-trusted-services", "redeploy"]


def test_registry_outside_the_allowed_scopes_is_not_changed() -> None:
    shared = make_registry(REGISTRY2_ID, "shared.azurecr.io")
    ctx = make_ctx(registries=[make_registry(), shared])
    result = decide(
        [pull_finding(), pull_finding(REGISTRY2_ID)], ctx, Settings(allowed_scopes=(f"/subscriptions/{SUB}",))
    )
    by_target = {a.target: a.status for a in result.actions if a.kind == "assign-role"}
    assert by_target == {REGISTRY_ID: "planned", REGISTRY2_ID: "skipped"}


def test_without_a_definition_nothing_is_granted_or_redeployed() -> None:
    # Without the group's definition nothing shows the identity is attached to the group, and
    # granting pull to an identity the group does not have fixes nothing (and widens access).
    ctx = make_ctx(with_definition=False)
    findings = [pull_finding(), finding("ACI_API_VERSION_TOO_OLD")]
    result = decide(findings, ctx)
    assert statuses(result) == {"assign-role": "skipped", "redeploy": "skipped"}
    assert "not an identity attached" in detail_of(result, "assign-role")
    assert "no definition" in detail_of(result, "redeploy")


def test_api_version_redeploy_is_a_fix_on_its_own() -> None:
    result = decide([finding("ACI_API_VERSION_TOO_OLD")], restricted_ctx(api_version="2021-03-01"))
    assert [a.kind for a in result.to_apply] == ["redeploy"]


# --- proposals -----------------------------------------------------------------------------------------


def ambiguous_ctx(**body_changes: Any) -> Context:
    body = group_body(**body_changes)
    body["properties"]["imageRegistryCredentials"][0]["username"] = "admin"
    return restricted_ctx(body=body)


AMBIGUOUS = finding("ACI_CREDENTIAL_AMBIGUOUS", fixable=False)


def test_proposals_are_only_proposed_by_default() -> None:
    result = decide([AMBIGUOUS], ambiguous_ctx())
    assert statuses(result) == {"propose-definition": "planned", "redeploy": "skipped"}
    assert "REMEDIATION_APPLY_DEFINITION_FIXES is false" in detail_of(result, "propose-definition")
    assert result.redeploy_definition is None and result.to_apply == ()


def test_apply_definition_fixes_makes_the_proposal_the_redeploy_definition() -> None:
    ctx = ambiguous_ctx()
    result = decide([AMBIGUOUS], ctx, Settings(apply_definition_fixes=True))
    proposal = next(a for a in result.actions if a.kind == "propose-definition")
    assert result.redeploy_definition == proposal.params["definition"]
    assert "username" not in result.redeploy_definition["properties"]["imageRegistryCredentials"][0]
    assert [a.kind for a in result.to_apply] == ["redeploy"]


@pytest.mark.parametrize(
    "findings, ctx_factory, why",
    [
        ([AMBIGUOUS], lambda: restricted_ctx(body=_with_secure_env(ambiguous_ctx_body())), "secrets were redacted"),
        ([finding("ACI_SYSTEM_IDENTITY_UNSUPPORTED", fixable=False)], lambda: _system_ctx(), "placeholder"),
    ],
)
def test_a_proposal_is_not_applied_when_it_cannot_be_deployed_as_is(findings: Any, ctx_factory: Any, why: str) -> None:
    result = decide(findings, ctx_factory(), Settings(apply_definition_fixes=True))
    assert result.redeploy_definition is None
    assert why in detail_of(result, "propose-definition")
    assert statuses(result)["redeploy"] == "skipped"


def ambiguous_ctx_body() -> dict[str, Any]:
    body = group_body()
    body["properties"]["imageRegistryCredentials"][0]["username"] = "admin"
    return body


def _with_secure_env(body: dict[str, Any]) -> dict[str, Any]:
    body["properties"]["containers"][0]["properties"]["environmentVariables"] = [{"name": "K", "secureValue": "v"}]
    return body


def _system_ctx() -> Context:
    body = group_body(identity={"type": "SystemAssigned"})
    body["properties"]["imageRegistryCredentials"][0]["identity"] = "[system]"
    return restricted_ctx(body=body)


# --- invariants: tampered actions are refused whatever the settings ---------------------------------


def _grant() -> tuple[Action, Context]:
    ctx = restricted_ctx()
    return plan([pull_finding()], ctx)[0], ctx


def _tamper_params(action: Action, **changes: Any) -> Action:
    return replace(action, params={**action.params, **changes})


ROLE_DEFS = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions"


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda a: _tamper_params(a, roleDefinitionId=f"{ROLE_DEFS}/{OWNER_GUID}"), "neither AcrPull"),
        (lambda a: _tamper_params(a, scope=f"/subscriptions/{SUB}"), "not exactly the target"),
        (
            lambda a: replace(_tamper_params(a, scope=f"/subscriptions/{SUB}"), target=f"/subscriptions/{SUB}"),
            "only on a registry",
        ),
        (lambda a: _tamper_params(a, scope=f"/subscriptions/{SUB}/resourceGroups/{RG}"), "not exactly the target"),
        (lambda a: _tamper_params(a, principalType="User"), "ServicePrincipal"),
        (lambda a: _tamper_params(a, condition="true"), "params must be exactly"),
        (lambda a: replace(a, params={k: v for k, v in a.params.items() if k != "name"}), "params must be exactly"),
        (lambda a: _tamper_params(a, principalId=OTHER_PRINCIPAL), "not an identity used by the container group"),
        (lambda a: _tamper_params(a, name="00000000-0000-0000-0000-000000000000"), "deterministic"),
        (
            lambda a: _tamper_params(
                a,
                roleDefinitionId=f"/subscriptions/{SUB2}/providers/Microsoft.Authorization/roleDefinitions/"
                f"{ACR_PULL_ROLE_GUID}",
            ),
            "registry's subscription",
        ),
        (
            lambda a: replace(
                _tamper_params(
                    a,
                    scope=REGISTRY2_ID,
                    name=assignment_name(REGISTRY2_ID, IDENTITY_PRINCIPAL, ACR_PULL_ROLE_GUID),
                ),
                target=REGISTRY2_ID,
            ),
            "not one of the container group's registries",
        ),
        (lambda a: replace(a, kind="delete-registry"), "unknown action kind"),
    ],
)
def test_tampered_role_assignment_is_refused_even_in_dry_run(tamper: Any, reason: str) -> None:
    grant, ctx = _grant()
    assert invariant_violation(grant, ctx) is None
    bad = tamper(grant)
    assert reason in (invariant_violation(bad, ctx) or "")
    for settings in (Settings(), Settings(dry_run=True)):
        (decided, *_) = gate([bad], ctx, settings).actions
        assert decided.status == "skipped" and "refused" in decided.detail


def _reader_grant() -> tuple[Action, Context]:
    ctx = make_ctx(registries=[make_registry(abac=True)])
    (grant,) = [a for a in plan([pull_finding(code="ACR_ABAC_REPOSITORY_PERMISSIONS")], ctx) if a.kind == "assign-role"]
    return grant, ctx


def _recondition(action: Action, condition: str) -> Action:
    name = assignment_name(REGISTRY_ID, IDENTITY_PRINCIPAL, REPOSITORY_READER_ROLE_GUID, condition)
    return _tamper_params(action, condition=condition, name=name)


@pytest.mark.parametrize(
    "tamper, reason",
    [
        # Without a condition a Repository Reader grants every repository of the registry.
        (lambda a: replace(a, params={k: v for k, v in a.params.items() if not k.startswith("condition")}),
         "only with a repository condition"),
        (lambda a: replace(a, params={k: v for k, v in a.params.items() if k != "conditionVersion"}),
         "only with a repository condition"),
        (lambda a: _tamper_params(a, conditionVersion="1.0"), "conditionVersion must be 2.0"),
        (lambda a: _recondition(a, repository_condition(["pythonworker", "team/secret"])), "not exactly the"),
        (lambda a: _recondition(a, repository_condition(["team/secret"])), "not exactly the documented"),
        (lambda a: _recondition(a, "@Request[Microsoft.ContainerRegistry/registries/repositories:name] "
                                   "StringEqualsIgnoreCase 'pythonworker' OR true"), "not exactly the documented"),
        (lambda a: _recondition(a, repository_condition(["pythonworker"]).replace("StringEqualsIgnoreCase",
                                                                                  "StringStartsWithIgnoreCase")),
         "not exactly the documented"),
        (lambda a: _tamper_params(a, condition=repository_condition(["pythonworker"]) + " "), "not exactly"),
        (lambda a: _tamper_params(a, name=assignment_name(REGISTRY_ID, IDENTITY_PRINCIPAL,
                                                          REPOSITORY_READER_ROLE_GUID)), "deterministic"),
    ],
)
def test_repository_reader_is_assigned_only_with_exactly_the_groups_repository_condition(tamper: Any,
                                                                                         reason: str) -> None:
    grant, ctx = _reader_grant()
    assert invariant_violation(grant, ctx) is None
    bad = tamper(grant)
    assert reason in (invariant_violation(bad, ctx) or "")
    (decided, *_) = gate([bad], ctx, Settings(dry_run=True)).actions
    assert decided.status == "skipped" and "refused" in decided.detail


READER_ID = f"/providers/Microsoft.Authorization/roleDefinitions/{REPOSITORY_READER_ROLE_GUID}"
READER_ROLE = RoleDefinition(READER_ID, "Container Registry Repository Reader",
                             data_actions=("Microsoft.ContainerRegistry/registries/repositories/metadata/read",
                                           "Microsoft.ContainerRegistry/registries/repositories/content/read"))


def _two_repository_ctx(*held: RoleAssignment) -> Context:
    """An ABAC registry; the group pulls pythonworker and team/web; the identity holds ``held``."""
    body = group_body()
    body["properties"]["containers"].append({**body["properties"]["containers"][0], "name": "web"})
    body["properties"]["containers"][1] = {"name": "web", "properties": {
        **body["properties"]["containers"][0]["properties"], "image": "myacr.azurecr.io/team/web:1"}}
    deployer_reads = RoleAssignment(f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/deployer",
                                    REGISTRY_ID, READER_ID, DEPLOYER)
    ctx = make_ctx(body, registries=[make_registry(abac=True)], role_definitions={READER_ROLE.guid: READER_ROLE},
                   deployer_assignments=(deployer_reads,))
    return replace(ctx, assignments={**ctx.assignments, IDENTITY_PRINCIPAL: held})


def _held_reader(scope: str, repositories: list[str], n: int = 1) -> RoleAssignment:
    return RoleAssignment(f"{scope}/providers/Microsoft.Authorization/roleAssignments/0000000{n}-aaaa-bbbb-cccc-dddd",
                          scope, READER_ID, IDENTITY_PRINCIPAL, repository_condition(repositories))


def _extra_reader(ctx: Context, repositories: list[str]) -> Action:
    excluded = finding("ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY", registryId=REGISTRY_ID,
                       principalId=IDENTITY_PRINCIPAL, repositories=repositories)
    (grant,) = [a for a in plan([excluded], ctx) if a.kind == "assign-role"]
    return grant


def test_an_additional_reader_for_exactly_the_excluded_repositories_is_allowed() -> None:
    ctx = _two_repository_ctx(_held_reader(f"/subscriptions/{SUB}/resourceGroups/{RG}", ["pythonworker"]))
    grant = _extra_reader(ctx, ["team/web"])
    assert invariant_violation(grant, ctx) is None
    assert gate([grant], ctx, Settings()).to_apply == (grant,)


def test_an_additional_reader_wider_than_the_excluded_repositories_is_refused() -> None:
    ctx = _two_repository_ctx(_held_reader(f"/subscriptions/{SUB}/resourceGroups/{RG}", ["pythonworker"]))
    wider = _extra_reader(ctx, ["pythonworker", "team/web"])
    assert "wider than needed" in (invariant_violation(wider, ctx) or "")
    assert "pythonworker" in (invariant_violation(wider, ctx) or "")
    (decided,) = gate([wider], ctx, Settings(dry_run=True)).actions
    assert decided.status == "skipped" and "refused" in decided.detail


def test_a_second_assignment_of_the_same_role_principal_and_scope_is_refused_whatever_its_condition() -> None:
    held = _held_reader(REGISTRY_ID, ["pythonworker"])
    ctx = _two_repository_ctx(held)
    second = _extra_reader(ctx, ["team/web"])
    assert "Azure keeps one assignment per principal, role and scope" in (invariant_violation(second, ctx) or "")
    assert held.id in (invariant_violation(second, ctx) or "")
    # the app's own earlier assignment (the same deterministic name) is a re-run, not a duplicate
    own = replace(held, id=f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/{second.params['name']}",
                  condition=second.params["condition"])
    rerun = _two_repository_ctx(_held_reader(f"/subscriptions/{SUB}/resourceGroups/{RG}", ["pythonworker"]), own)
    assert "already assigns" not in (invariant_violation(second, rerun) or "")


def test_the_deployers_custom_role_wildcard_counts_as_pull_only_with_arm_private_link() -> None:
    wildcard = RoleDefinition(f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
                              "aaaaaaaa-0000-0000-0000-0000000000aa", "Registry reader",
                              actions=("Microsoft.ContainerRegistry/registries/*/read",), role_type="CustomRole")
    held = RoleAssignment(f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/w", REGISTRY_ID,
                          wildcard.id, DEPLOYER)
    ctx = limited_ctx(held)
    ctx = replace(ctx, role_definitions={**ctx.role_definitions, wildcard.guid: wildcard})
    assert statuses(decide([pull_finding()], ctx))["assign-role"] == "skipped"
    linked = replace(ctx, rbac=RbacRules(custom_wildcards=True))
    assert statuses(decide([pull_finding()], linked))["assign-role"] == "planned"


@pytest.mark.parametrize(
    "params",
    [
        {"networkRuleBypassOptions": "AzureServices", "publicNetworkAccess": "Enabled"},
        {"networkRuleBypassOptions": "None"},
        {"publicNetworkAccess": "Enabled"},
        {},
    ],
)
def test_trusted_services_patch_with_anything_else_is_refused(params: dict[str, Any]) -> None:
    ctx = restricted_ctx()
    patch = next(a for a in plan([TRUSTED], ctx) if a.kind == "enable-trusted-services")
    assert invariant_violation(patch, ctx) is None
    tampered = replace(patch, params=params)
    assert "may only write" in (invariant_violation(tampered, ctx) or "")
    assert gate([tampered], ctx, Settings()).to_apply == ()


def test_trusted_services_on_a_registry_without_a_firewall_is_refused() -> None:
    """The network fix is for network-restricted registries only; the gather reads the policy
    assignments the gate weighs for it at no other."""
    patch = next(a for a in plan([TRUSTED], restricted_ctx()) if a.kind == "enable-trusted-services")
    open_ctx = make_ctx(registries=[make_registry(bypass="None")])
    assert "is not network-restricted" in (invariant_violation(patch, open_ctx) or "")
    assert gate([patch], open_ctx, Settings()).to_apply == ()


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda a: replace(a, target=GROUP_ID.replace("acrtestcontainergroup", "other")), "only target the failed"),
        (lambda a: replace(a, params={"apiVersion": "2019-12-01"}), "older than"),
        (lambda a: replace(a, params={"apiVersion": "2023-05-01", "definition": {}}), "only hold apiVersion"),
    ],
)
def test_tampered_redeploy_is_refused(tamper: Any, reason: str) -> None:
    ctx = restricted_ctx()
    redeploy = plan([pull_finding()], ctx)[-1]
    assert redeploy.kind == "redeploy" and invariant_violation(redeploy, ctx) is None
    assert reason in (invariant_violation(tamper(redeploy), ctx) or "")


def test_proposal_for_another_group_is_refused() -> None:
    ctx = ambiguous_ctx()
    proposal = plan([AMBIGUOUS], ctx)[0]
    assert invariant_violation(proposal, ctx) is None
    other = replace(proposal, target=GROUP_ID + "-other")
    assert "only concern the failed group" in (invariant_violation(other, ctx) or "")


def test_trusted_services_on_a_registry_the_group_does_not_use_is_refused() -> None:
    ctx = restricted_ctx()
    patch = next(a for a in plan([TRUSTED], ctx) if a.kind == "enable-trusted-services")
    elsewhere = replace(patch, target=REGISTRY2_ID)
    assert "not one of the container group's registries" in (invariant_violation(elsewhere, ctx) or "")
    for settings in (Settings(), Settings(dry_run=True)):
        (decided,) = gate([elsewhere], ctx, settings).actions
        assert decided.status == "skipped" and "refused" in decided.detail


def test_a_proposal_without_its_definition_is_refused_not_a_crash() -> None:
    ctx = ambiguous_ctx()
    proposal = next(a for a in plan([AMBIGUOUS], ctx) if a.kind == "propose-definition")
    assert invariant_violation(proposal, ctx) is None
    emptied = replace(proposal, params={})
    assert "must carry the corrected definition" in (invariant_violation(emptied, ctx) or "")
    (decided,) = gate([emptied], ctx, Settings(apply_definition_fixes=True)).actions
    assert decided.status == "skipped" and "refused" in decided.detail


# --- who may be given a fix: the deployer of the failed write (CONTRACT.md §1) -------------------------

ACR_PULL_ID = f"/providers/Microsoft.Authorization/roleDefinitions/{ACR_PULL_ROLE_GUID}"
ENTRA_GROUP = "99999999-0000-0000-0000-000000000001"
ACR_PULL_ROLE = RoleDefinition(ACR_PULL_ID, "AcrPull", actions=("Microsoft.ContainerRegistry/registries/pull/read",))


def limited_ctx(*assignments: RoleAssignment, tags: dict[str, str] | None = None, **kwargs: Any) -> Context:
    """The deployer holds only ``assignments`` (none: it may not touch the registry)."""
    return make_ctx(registries=[make_registry(restricted=True, bypass="None", tags=tags)],
                    deployer_assignments=assignments, role_definitions={ACR_PULL_ROLE.guid: ACR_PULL_ROLE}, **kwargs)


def test_no_pull_grant_and_no_bypass_where_the_deployer_could_not_pull_or_write_itself() -> None:
    result = decide([pull_finding(), TRUSTED], limited_ctx())
    assert statuses(result) == {"assign-role": "skipped", "enable-trusted-services": "skipped", "redeploy": "skipped"}
    assert f"the deployer {DEPLOYER} cannot itself pull from registry myacr" in detail_of(result, "assign-role")
    assert f"the deployer {DEPLOYER} cannot itself write registry myacr" in detail_of(result, "enable-trusted-services")
    assert result.to_apply == ()
    lacks = {cause: evidence["deployer"]["lacks"] for cause, target, evidence in result.cause_evidence
             if target == REGISTRY_ID}
    assert lacks == {"ACR_PULL_PERMISSION_MISSING": "Microsoft.ContainerRegistry/registries/pull/read",
                     "ACR_TRUSTED_SERVICES_DISABLED": "Microsoft.ContainerRegistry/registries/write"}


def test_a_deployer_who_can_pull_through_a_group_may_have_the_identity_given_pull() -> None:
    through_group = RoleAssignment(f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/g",
                                   REGISTRY_ID, ACR_PULL_ID, ENTRA_GROUP)
    result = decide([pull_finding(), TRUSTED], limited_ctx(through_group))
    assert statuses(result) == {"assign-role": "planned", "enable-trusted-services": "skipped", "redeploy": "planned"}
    (pull,) = [e for cause, _, e in result.cause_evidence if cause == "ACR_PULL_PERMISSION_MISSING"]
    assert pull["deployer"]["holds"] is True


@pytest.mark.parametrize("value, planned", [("allow", True), ("ALLOW ", True), ("off", False), ("on", False)])
def test_a_registry_tagged_allow_consents_to_both_fixes_and_off_still_refuses(value: str, planned: bool) -> None:
    result = decide([pull_finding(), TRUSTED], limited_ctx(tags={"aci-remediation": value}))
    expected = "planned" if planned else "skipped"
    assert statuses(result) == {"assign-role": expected, "enable-trusted-services": expected, "redeploy": expected}
    if value == "off":
        assert "opt-out tag" in detail_of(result, "assign-role")
    if planned:
        consents = {e["deployer"]["consent"] for _, _, e in result.cause_evidence}
        assert consents == {"registry tag aci-remediation=allow"}


def test_without_the_failed_writes_record_nothing_is_written_and_a_retry_may_know_more() -> None:
    result = decide([pull_finding(), TRUSTED, finding("ACI_API_VERSION_TOO_OLD")],
                    restricted_ctx(deployer=None, api_version="2021-03-01"))
    assert set(statuses(result).values()) == {"skipped"} and result.to_apply == ()
    assert "not in the Activity Log" in detail_of(result, "redeploy")
    assert result.retryable and result.skip_reason is None


def test_a_sweep_acts_for_the_last_caller_of_the_groups_writes_other_than_the_app() -> None:
    settings = Settings(remediator_principal_id=REMEDIATOR)
    app_redeploy = replace(failed_write(REMEDIATOR), status="Succeeded", correlation_id="app")
    ctx = sweep_ctx()
    assert ctx.group_writes is not None
    behind_the_app = replace(ctx, group_writes=(app_redeploy, *ctx.group_writes))
    assert statuses(decide([pull_finding()], behind_the_app, settings)) == {"assign-role": "planned"}
    only_the_app = replace(ctx, group_writes=(app_redeploy,))
    result = decide([pull_finding()], only_the_app, settings)
    assert statuses(result) == {"assign-role": "skipped"}
    assert "who made the failed write is not in the Activity Log" in detail_of(result, "assign-role")


# --- the loop guard reads the Activity Log, not the event's claims ----------------------------------------


def test_the_loop_guard_is_the_activity_logs_caller_whatever_the_claims_say() -> None:
    settings = Settings(remediator_principal_id=REMEDIATOR)
    ctx = restricted_ctx()
    forged_me = replace(ctx, signal=replace(ctx.signal, caller_object_id=REMEDIATOR))
    assert decide([pull_finding()], forged_me, settings).skip_reason is None
    mine = replace(ctx, failed_write=failed_write(REMEDIATOR))
    result = decide([pull_finding()], mine, settings)
    assert "Activity Log records the failed write as made by the remediator" in (result.skip_reason or "")


def test_only_an_event_grid_deliverys_claims_can_skip_a_run_before_any_read() -> None:
    settings = Settings(remediator_principal_id=REMEDIATOR)
    signal = restricted_ctx(caller=REMEDIATOR).signal
    assert "loop guard" in (early_refusal(signal, settings, trigger="eventgrid") or "")
    assert early_refusal(signal, settings, trigger="replay") is None


# --- a redeploy only while the failed write is the group's latest intent -----------------------------------

LATER = FAILED_AT + timedelta(minutes=5)


def later(operation: str = "write", status: str = "Succeeded", caller: str = DEPLOYER,
          correlation: str = "later") -> WriteRecord:
    return WriteRecord(f"Microsoft.ContainerInstance/containerGroups/{operation}", status, caller, LATER, correlation)


@pytest.mark.parametrize("writes, stale", [
    ((later(),), "wrote the group"),
    ((later("delete"),), "deleted the group"),
    ((later(caller=OTHER_PRINCIPAL),), "wrote the group"),
    ((later(status="Failed"),), None),  # another failed attempt is not a newer definition in place
    ((later(caller=REMEDIATOR),), None),  # the app's own redeploy of this very failure
    ((later(correlation=FAILED_CORRELATION),), None),  # the failed write's own record
    ((), None),
], ids=["written", "deleted", "written-by-another", "failed-again", "app-redeploy", "same-write", "none"])
def test_a_superseded_failure_is_diagnosed_never_redeployed(writes: tuple[WriteRecord, ...], stale: str | None) -> None:
    settings = Settings(remediator_principal_id=REMEDIATOR)
    findings = [pull_finding(), finding("ACI_API_VERSION_TOO_OLD")]
    result = decide(findings, restricted_ctx(group_writes=writes, api_version="2021-03-01"), settings)
    if stale is None:
        assert [a.kind for a in result.to_apply] == ["assign-role", "redeploy"]
        return
    assert set(statuses(result).values()) == {"skipped"} and result.to_apply == ()
    assert "no longer the group's latest intent" in detail_of(result, "redeploy") and stale in detail_of(
        result, "redeploy")
    assert result.skip_reason is None and not result.retryable  # diagnosed, and for good
    dry = decide(findings, restricted_ctx(group_writes=writes, api_version="2021-03-01"),
                 Settings(remediator_principal_id=REMEDIATOR, dry_run=True))
    assert "no longer the group's latest intent" in detail_of(dry, "redeploy")


def test_unread_later_writes_leave_the_intent_unknown() -> None:
    result = decide([pull_finding()], restricted_ctx(group_writes=None))
    assert result.to_apply == () and "could not be read" in detail_of(result, "redeploy")


def _running(image: str, started: datetime) -> dict[str, Any]:
    view = {"currentState": {"state": "Running", "startTime": started.isoformat().replace("+00:00", "Z")}}
    return {"id": GROUP_ID, "tags": {}, "properties": {"provisioningState": "Succeeded", "containers": [
        {"name": "worker", "properties": {"image": image, "instanceView": view}}]}}


@pytest.mark.parametrize("image, started, stale", [
    ("mcr.microsoft.com/azuredocs/aci-helloworld:latest", LATER, True),  # another definition since the failure
    ("mcr.microsoft.com/azuredocs/aci-helloworld:latest", FAILED_AT - timedelta(days=1), False),  # the one it replaced
], ids=["since", "before"])
def test_a_group_that_now_runs_another_definition_is_not_rolled_back(image: str, started: datetime,
                                                                     stale: bool) -> None:
    result = decide([pull_finding()], restricted_ctx(existing_group=_running(image, started)))
    assert (result.to_apply == ()) == stale
    if stale:
        assert "the group now runs mcr.microsoft.com/azuredocs/aci-helloworld:latest" in detail_of(result, "redeploy")


# --- no identity is ever attached -----------------------------------------------------------------------


def test_a_proposal_that_attaches_an_identity_is_never_deployed() -> None:
    body = group_body()
    body["identity"]["userAssignedIdentities"] = {}
    ctx = restricted_ctx(body=body)
    result = decide([finding("ACI_IDENTITY_NOT_ATTACHED", fixable=False)], ctx, Settings(apply_definition_fixes=True))
    assert result.redeploy_definition is None and result.to_apply == ()
    assert statuses(result)["propose-definition"] == "planned"  # still proposed, for a person
    assert "the app never attaches an identity" in detail_of(result, "propose-definition")


def test_a_proposal_that_adds_the_system_assigned_identity_is_never_deployed() -> None:
    proposal = Action(kind="propose-definition", target=GROUP_ID, detail="switch",
                      params={"definition": group_body(identity={"type": "SystemAssigned, UserAssigned",
                                                                 "userAssignedIdentities": {}}),
                              "complete": True, "secretsRedacted": False})
    ctx = restricted_ctx()
    result = gate([proposal], ctx, Settings(apply_definition_fixes=True))
    assert result.redeploy_definition is None
    assert "the system-assigned identity" in detail_of(result, "propose-definition")
