"""The plan stage on plain data: one fix per cause, deterministic role assignments, proposals."""

from __future__ import annotations

import copy
import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from remediation.actions import is_registry_id
from remediation.actions.assign_role import (
    ACR_PULL_ROLE_GUID,
    REPOSITORY_READER_ROLE_GUID,
    assignment_name,
    repository_condition,
)
from remediation.definition import DefinitionSource, parse_definition
from remediation.model import (
    CURRENT_ACI_API_VERSION,
    Action,
    Context,
    FailureSignal,
    Finding,
    Identity,
    Registry,
    RoleAssignment,
    RoleDefinition,
    WriteRecord,
)
from remediation.plan import FIXES, fix, plan
from remediation.plan.propose_definition import IDENTITY_PLACEHOLDER
from tests.worlds import (
    GROUP_ID,
    IDENTITY_CLIENT,
    IDENTITY_ID,
    IDENTITY_PRINCIPAL,
    LOGIN_SERVER,
    REGISTRY_ID,
    RG,
    SUB,
    SUB2,
    group_body,
)

OTHER_PRINCIPAL = "cccccccc-0000-0000-0000-000000000002"
OTHER_IDENTITY_ID = IDENTITY_ID.replace("myACRId", "otherId")
ROLE_DEFINITIONS = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions"
REGISTRY2_ID = f"/subscriptions/{SUB2}/resourceGroups/shared/providers/Microsoft.ContainerRegistry/registries/shared"
DEPLOYER = "11111111-1111-1111-1111-111111111111"
"""Who made the failed write in :func:`make_ctx`'s contexts: Owner of both subscriptions, unless told otherwise."""
OWNER = RoleDefinition(f"/providers/Microsoft.Authorization/roleDefinitions/{'8e3af657-a8ff-443c-a75c-2fe8c4bcb635'}",
                       "Owner", actions=("*",))
FAILED_AT = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
FAILED_CORRELATION = "c0ffee00-0000-0000-0000-000000000001"


def owner_of_both_subscriptions(principal: str = DEPLOYER) -> tuple[RoleAssignment, ...]:
    return tuple(RoleAssignment(f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/{principal}",
                                f"/subscriptions/{sub}", OWNER.id, principal) for sub in (SUB, SUB2))


def failed_write(caller: str | None = DEPLOYER, at: datetime = FAILED_AT) -> WriteRecord:
    """The Activity Log record of the failed write."""
    return WriteRecord("Microsoft.ContainerInstance/containerGroups/write", "Failed", caller, at, FAILED_CORRELATION)


# --- builders (also used by test_policy and test_report) ---------------------------------------


def make_registry(
    registry_id: str = REGISTRY_ID,
    login_server: str = LOGIN_SERVER,
    *,
    abac: bool = False,
    restricted: bool = False,
    bypass: str = "AzureServices",
    tags: dict[str, str] | None = None,
) -> Registry:
    return Registry(
        id=registry_id,
        name=registry_id.rsplit("/", 1)[-1],
        login_server=login_server,
        sku="Premium",
        public_network_access="Disabled" if restricted else "Enabled",
        default_action="Allow",
        bypass=bypass,
        role_assignment_mode="AbacRepositoryPermissions" if abac else "LegacyRegistryPermissions",
        tags=tags or {},
    )


def make_ctx(
    body: dict[str, Any] | None = None,
    *,
    registries: list[Registry] | None = None,
    api_version: str | None = CURRENT_ACI_API_VERSION,
    with_definition: bool = True,
    role_definitions: dict[str, RoleDefinition] | None = None,
    caller: str | None = None,
    existing_group: dict[str, Any] | None = None,
    identities: dict[str, str] | None = None,
    source: DefinitionSource = "activity-log",
    deployer: str | None = DEPLOYER,
    deployer_assignments: tuple[RoleAssignment, ...] | None = None,
    group_writes: tuple[WriteRecord, ...] | None = (),
) -> Context:
    """A context for the standard world: group → myacr.azurecr.io with the user-assigned identity.

    The definition is Azure's own record by default; ``source="replay"`` makes it the replay caller's.
    The Activity Log records the failed write as made by ``caller`` (else ``deployer``; neither: no
    record), who holds ``deployer_assignments`` (default: Owner of both subscriptions), and
    ``group_writes`` after it.
    """
    signal = FailureSignal(
        resource_id=GROUP_ID,
        subscription_id=SUB,
        resource_group=RG,
        name="acrtestcontainergroup",
        caller_object_id=caller,
    )
    definition = None
    if with_definition:
        definition = parse_definition(GROUP_ID, body or group_body(), api_version, source)
    regs = registries if registries is not None else [make_registry()]
    ids = identities if identities is not None else {IDENTITY_ID: IDENTITY_PRINCIPAL}
    made_by = caller or deployer
    assignments = {} if made_by is None else {
        made_by.lower(): owner_of_both_subscriptions(made_by) if deployer_assignments is None else deployer_assignments}
    return Context(
        signal=signal,
        definition=definition,
        registries={r.login_server.lower(): r for r in regs},
        identities={i.lower(): Identity(i, p, IDENTITY_CLIENT) for i, p in ids.items()},
        assignments=assignments,
        role_definitions={OWNER.guid: OWNER, **(role_definitions or {})},
        existing_group=existing_group,
        failed_write=failed_write(made_by) if made_by else None,
        group_writes=group_writes,
    )


def finding(code: str, *, fixable: bool = True, **evidence: Any) -> Finding:
    return Finding(code=code, summary=f"{code} found", evidence=evidence, fixable=fixable)


def pull_finding(
    registry_id: str = REGISTRY_ID, principal: str = IDENTITY_PRINCIPAL, code: str = "ACR_PULL_PERMISSION_MISSING"
) -> Finding:
    return finding(code, registryId=registry_id, principalId=principal, identity=IDENTITY_ID)


def only(actions: list[Action], kind: str) -> list[Action]:
    return [a for a in actions if a.kind == kind]


# --- role assignments ----------------------------------------------------------------------------


def test_acr_pull_is_assigned_at_exactly_the_registry_then_the_group_is_redeployed() -> None:
    actions = plan([pull_finding()], make_ctx())

    assert [a.kind for a in actions] == ["assign-role", "redeploy"]
    grant, redeploy = actions
    assert grant.target == REGISTRY_ID
    assert grant.params == {
        "scope": REGISTRY_ID,
        "roleDefinitionId": f"{ROLE_DEFINITIONS}/{ACR_PULL_ROLE_GUID}",
        "principalId": IDENTITY_PRINCIPAL,
        "principalType": "ServicePrincipal",
        "name": assignment_name(REGISTRY_ID, IDENTITY_PRINCIPAL, ACR_PULL_ROLE_GUID),
    }
    assert grant.cause == "ACR_PULL_PERMISSION_MISSING"
    assert redeploy.target == GROUP_ID and redeploy.params == {"apiVersion": CURRENT_ACI_API_VERSION}


def test_role_definition_lives_in_the_registrys_subscription_not_the_groups() -> None:
    shared = make_registry(REGISTRY2_ID, "shared.azurecr.io")
    actions = plan([pull_finding(REGISTRY2_ID)], make_ctx(registries=[make_registry(), shared]))

    (grant,) = only(actions, "assign-role")
    assert grant.params["scope"] == REGISTRY2_ID
    assert grant.params["roleDefinitionId"].startswith(f"/subscriptions/{SUB2}/providers/")


def test_assignment_name_is_a_stable_uuid5_and_differs_per_principal_scope_and_role() -> None:
    first = plan([pull_finding()], make_ctx())[0].params["name"]
    again = plan([pull_finding()], make_ctx())[0].params["name"]
    assert first == again
    assert uuid.UUID(first).version == 5
    # Case does not matter (ARM ids are case-insensitive) ...
    assert assignment_name(REGISTRY_ID.upper(), IDENTITY_PRINCIPAL.upper(), ACR_PULL_ROLE_GUID) == first
    # ... but each of the three inputs does.
    names = {
        first,
        assignment_name(REGISTRY_ID, OTHER_PRINCIPAL, ACR_PULL_ROLE_GUID),
        assignment_name(REGISTRY2_ID, IDENTITY_PRINCIPAL, ACR_PULL_ROLE_GUID),
        assignment_name(REGISTRY_ID, IDENTITY_PRINCIPAL, REPOSITORY_READER_ROLE_GUID),
    }
    assert len(names) == 4
    other = plan([pull_finding(principal=OTHER_PRINCIPAL)], make_ctx())[0].params["name"]
    assert other != first


def test_abac_registry_gets_repository_reader_not_acrpull() -> None:
    ctx = make_ctx(registries=[make_registry(abac=True)])
    actions = plan([pull_finding(code="ACR_ABAC_REPOSITORY_PERMISSIONS")], ctx)

    (grant,) = only(actions, "assign-role")
    assert grant.params["roleDefinitionId"].endswith(f"/roleDefinitions/{REPOSITORY_READER_ROLE_GUID}")
    # Conditioned to the group's repository, in the documented @Request form: never registry-wide.
    condition = repository_condition(["pythonworker"])
    assert grant.params["condition"] == condition and grant.params["conditionVersion"] == "2.0"
    assert "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase " \
        "'pythonworker'" in condition
    assert grant.params["name"] == assignment_name(REGISTRY_ID, IDENTITY_PRINCIPAL, REPOSITORY_READER_ROLE_GUID,
                                                   condition)
    assert grant.params["name"] != assignment_name(REGISTRY_ID, IDENTITY_PRINCIPAL, REPOSITORY_READER_ROLE_GUID)


def test_repository_reader_is_conditioned_to_the_repositories_the_finding_names_only() -> None:
    body = group_body()
    first = body["properties"]["containers"][0]
    body["properties"]["containers"].append({**copy.deepcopy(first), "name": "sidecar"})
    body["properties"]["containers"][1]["properties"]["image"] = f"{LOGIN_SERVER}/team/web:1"
    ctx = make_ctx(body, registries=[make_registry(abac=True)])
    everything = finding("ACR_ABAC_REPOSITORY_PERMISSIONS", registryId=REGISTRY_ID, principalId=IDENTITY_PRINCIPAL)
    (grant,) = only(plan([everything], ctx), "assign-role")
    assert grant.params["condition"] == repository_condition(["pythonworker", "team/web"])
    named = finding("ACR_ABAC_REPOSITORY_PERMISSIONS", registryId=REGISTRY_ID, principalId=IDENTITY_PRINCIPAL,
                    repositories=["team/web", "elsewhere"])
    (grant,) = only(plan([named], ctx), "assign-role")
    assert grant.params["condition"] == repository_condition(["team/web"])


def test_repository_reader_is_looked_up_by_name_before_the_fallback_guid() -> None:
    listed = "0d0d0d0d-1111-2222-3333-444444444444"
    roles = {
        listed: RoleDefinition(
            id=f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{listed}",
            role_name="Container Registry Repository Reader",
        ),
        "a1a1a1a1-0000-0000-0000-000000000000": RoleDefinition(
            id="/providers/Microsoft.Authorization/roleDefinitions/a1a1a1a1-0000-0000-0000-000000000000",
            role_name="Container Registry Repository Reader",
            role_type="CustomRole",  # a custom role with the same name is not the built-in
        ),
    }
    ctx = make_ctx(registries=[make_registry(abac=True)], role_definitions=roles)
    (grant,) = only(plan([pull_finding(code="ACR_ABAC_REPOSITORY_PERMISSIONS")], ctx), "assign-role")
    assert grant.params["roleDefinitionId"].endswith(f"/roleDefinitions/{listed}")


def test_a_propagating_pull_role_gets_no_new_assignment_only_the_redeploy() -> None:
    actions = plan([pull_finding(code="ACR_PULL_PERMISSION_PROPAGATING")], make_ctx())
    assert [(a.kind, a.cause) for a in actions] == [("redeploy", "ACR_PULL_PERMISSION_PROPAGATING")]
    assert actions[0].target == GROUP_ID


def test_an_excluding_condition_gets_an_additional_reader_for_the_excluded_repositories_only() -> None:
    body = group_body()
    first = body["properties"]["containers"][0]
    body["properties"]["containers"].append({**copy.deepcopy(first), "name": "sidecar"})
    body["properties"]["containers"][1]["properties"]["image"] = f"{LOGIN_SERVER}/team/web:1"
    ctx = make_ctx(body, registries=[make_registry(abac=True)])
    excluded = finding("ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY", registryId=REGISTRY_ID,
                       principalId=IDENTITY_PRINCIPAL, repositories=["team/web"])
    (grant,) = only(plan([excluded], ctx), "assign-role")
    assert grant.params["condition"] == repository_condition(["team/web"])
    assert grant.params["roleDefinitionId"].endswith(f"/roleDefinitions/{REPOSITORY_READER_ROLE_GUID}")
    assert plan([replace(excluded, fixable=False)], ctx) == []  # Azure would refuse a second one


def test_acrpull_is_not_planned_on_an_abac_registry_where_it_would_not_be_honoured() -> None:
    ctx = make_ctx(registries=[make_registry(abac=True)])
    assert plan([pull_finding()], ctx) == []


def test_pull_targets_fall_back_to_the_groups_credentials_when_evidence_is_thin() -> None:
    actions = plan([finding("ACR_PULL_PERMISSION_MISSING", loginServer=LOGIN_SERVER)], make_ctx())
    (grant,) = only(actions, "assign-role")
    assert (grant.target, grant.params["principalId"]) == (REGISTRY_ID, IDENTITY_PRINCIPAL)


def test_role_scope_is_never_wider_than_a_registry() -> None:
    shared = make_registry(REGISTRY2_ID, "shared.azurecr.io")
    body = group_body()
    body["properties"]["imageRegistryCredentials"].append({"server": "shared.azurecr.io", "identity": IDENTITY_ID})
    ctx = make_ctx(body, registries=[make_registry(), shared])
    findings = [finding("ACR_PULL_PERMISSION_MISSING"), pull_finding(), pull_finding(REGISTRY2_ID)]

    grants = only(plan(findings, ctx), "assign-role")
    assert {g.target for g in grants} == {REGISTRY_ID, REGISTRY2_ID}
    for grant in grants:
        assert grant.params["scope"] == grant.target
        assert is_registry_id(grant.params["scope"])
    assert not is_registry_id(f"/subscriptions/{SUB}")
    assert not is_registry_id(f"/subscriptions/{SUB}/resourceGroups/{RG}")
    assert not is_registry_id(f"{REGISTRY_ID}/scopeMaps/x")


def test_unfixable_automatic_finding_plans_nothing() -> None:
    assert plan([replace(pull_finding(), fixable=False)], make_ctx()) == []
    assert plan([finding("ACR_NOT_FOUND")], make_ctx()) == []


# --- registry network, api-version, redeploy --------------------------------------------------------


def test_trusted_services_patch_holds_exactly_the_bypass_option() -> None:
    ctx = make_ctx(registries=[make_registry(restricted=True, bypass="None")])
    actions = plan([finding("ACR_TRUSTED_SERVICES_DISABLED", registryId=REGISTRY_ID)], ctx)

    (patch,) = only(actions, "enable-trusted-services")
    assert patch.target == REGISTRY_ID
    assert patch.params == {"networkRuleBypassOptions": "AzureServices"}
    assert actions[-1].kind == "redeploy"


def test_trusted_services_without_evidence_targets_only_restricted_registries_lacking_the_bypass() -> None:
    open_one = make_registry(REGISTRY2_ID, "shared.azurecr.io", restricted=True, bypass="AzureServices")
    ctx = make_ctx(registries=[make_registry(restricted=True, bypass="None"), open_one])
    patches = only(plan([finding("ACR_TRUSTED_SERVICES_DISABLED")], ctx), "enable-trusted-services")
    assert [p.target for p in patches] == [REGISTRY_ID]


def test_old_api_version_is_redeployed_once_with_the_current_one() -> None:
    ctx = make_ctx(api_version="2021-03-01")
    actions = plan([finding("ACI_API_VERSION_TOO_OLD"), pull_finding()], ctx)

    redeploys = only(actions, "redeploy")
    assert len(redeploys) == 1
    assert redeploys[0].params == {"apiVersion": CURRENT_ACI_API_VERSION}
    assert redeploys[0].cause == "ACI_API_VERSION_TOO_OLD"
    assert actions[-1] is redeploys[0]


def test_redeploy_keeps_a_recent_enough_api_version_of_the_definition() -> None:
    actions = plan([pull_finding()], make_ctx(api_version="2022-09-01"))
    assert actions[-1].params == {"apiVersion": "2022-09-01"}


def test_no_redeploy_is_appended_without_a_definition() -> None:
    ctx = make_ctx(with_definition=False)
    assert [a.kind for a in plan([pull_finding()], ctx)] == ["assign-role"]


def test_plan_is_deduplicated_and_independent_of_finding_order() -> None:
    shared = make_registry(REGISTRY2_ID, "shared.azurecr.io", restricted=True, bypass="None")
    ctx = make_ctx(registries=[make_registry(), shared])
    findings = [
        pull_finding(),
        pull_finding(REGISTRY2_ID),
        pull_finding(),
        finding("ACR_TRUSTED_SERVICES_DISABLED", registryId=REGISTRY2_ID),
        finding("ACI_API_VERSION_TOO_OLD"),
    ]
    expected = plan(findings, ctx)
    assert [a.kind for a in expected] == ["assign-role", "assign-role", "enable-trusted-services", "redeploy"]
    for order in itertools.permutations(findings):
        assert plan(list(order), ctx) == expected


# --- proposals -------------------------------------------------------------------------------------


def _proposal(actions: list[Action]) -> Action:
    (proposal,) = only(actions, "propose-definition")
    return proposal


def _credential(action: Action, index: int = 0) -> dict[str, Any]:
    cred: dict[str, Any] = action.params["definition"]["properties"]["imageRegistryCredentials"][index]
    return cred


def test_ambiguous_credential_keeps_server_and_identity_only() -> None:
    body = group_body()
    body["properties"]["imageRegistryCredentials"][0].update(username="admin", password="hunter2-secret")
    ctx = make_ctx(body)
    before = copy.deepcopy(ctx.definition.body if ctx.definition else {})

    proposal = _proposal(plan([finding("ACI_CREDENTIAL_AMBIGUOUS", fixable=False)], ctx))
    assert _credential(proposal) == {"server": LOGIN_SERVER, "identity": IDENTITY_ID}
    assert proposal.params["complete"] is True
    assert proposal.target == GROUP_ID
    assert ctx.definition is not None and ctx.definition.body == before  # the context is not mutated
    assert "hunter2-secret" not in repr(proposal)


def test_identity_not_attached_is_added_to_the_group_identity() -> None:
    body = group_body(identity={"type": "SystemAssigned"})
    proposal = _proposal(plan([finding("ACI_IDENTITY_NOT_ATTACHED", fixable=False)], make_ctx(body)))
    identity = proposal.params["definition"]["identity"]
    assert identity == {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {IDENTITY_ID: {}}}

    body = group_body()
    del body["identity"]
    proposal = _proposal(plan([finding("ACI_IDENTITY_NOT_ATTACHED", fixable=False)], make_ctx(body)))
    assert proposal.params["definition"]["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": {IDENTITY_ID: {}},
    }


def test_system_identity_uses_the_one_attached_user_assigned_identity() -> None:
    body = group_body()
    body["properties"]["imageRegistryCredentials"][0]["identity"] = "[system]"
    proposal = _proposal(plan([finding("ACI_SYSTEM_IDENTITY_UNSUPPORTED", fixable=False)], make_ctx(body)))
    assert _credential(proposal)["identity"] == IDENTITY_ID
    assert proposal.params["complete"] is True


def test_system_identity_without_a_user_assigned_one_gets_a_placeholder_and_an_explanation() -> None:
    body = group_body(identity={"type": "SystemAssigned"})
    body["properties"]["imageRegistryCredentials"][0]["identity"] = "[system]"
    proposal = _proposal(plan([finding("ACI_SYSTEM_IDENTITY_UNSUPPORTED", fixable=False)], make_ctx(body)))
    assert _credential(proposal)["identity"] == IDENTITY_PLACEHOLDER
    assert proposal.params["complete"] is False
    assert any("user-assigned identity" in change for change in proposal.params["changes"])


def test_missing_server_is_taken_from_the_containers_image() -> None:
    body = group_body()
    del body["properties"]["imageRegistryCredentials"][0]["server"]
    proposal = _proposal(plan([finding("ACI_CREDENTIAL_SERVER_MISSING", fixable=False)], make_ctx(body)))
    assert _credential(proposal) == {"server": LOGIN_SERVER, "identity": IDENTITY_ID}
    assert proposal.params["complete"] is True


def test_several_definition_causes_make_one_cumulative_proposal_before_the_redeploy() -> None:
    body = group_body(identity={"type": "None"})
    body["properties"]["imageRegistryCredentials"][0].update(username="admin", password="x")
    del body["properties"]["imageRegistryCredentials"][0]["server"]
    findings = [
        finding("ACI_IDENTITY_NOT_ATTACHED", fixable=False),
        finding("ACI_CREDENTIAL_AMBIGUOUS", fixable=False),
        finding("ACI_CREDENTIAL_SERVER_MISSING", fixable=False),
    ]
    actions = plan(findings, make_ctx(body))

    assert [a.kind for a in actions] == ["propose-definition", "redeploy"]
    proposal = actions[0]
    assert _credential(proposal) == {"server": LOGIN_SERVER, "identity": IDENTITY_ID}
    assert proposal.params["definition"]["identity"]["userAssignedIdentities"] == {IDENTITY_ID: {}}
    assert len(proposal.params["changes"]) >= 3
    assert set(proposal.cause.split(",")) == {f.code for f in findings}
    assert proposal.params["secretsRedacted"] is False


def test_proposal_marks_a_body_that_lost_secure_values_to_redaction() -> None:
    body = group_body()
    body["properties"]["containers"][0]["properties"]["environmentVariables"] = [
        {"name": "DB_PASSWORD", "secureValue": "s3cret-value"}
    ]
    body["properties"]["imageRegistryCredentials"][0]["username"] = "admin"
    proposal = _proposal(plan([finding("ACI_CREDENTIAL_AMBIGUOUS", fixable=False)], make_ctx(body)))
    assert proposal.params["secretsRedacted"] is True
    assert "s3cret-value" not in repr(proposal)


def test_no_proposal_without_a_definition() -> None:
    ctx = make_ctx(with_definition=False)
    assert plan([finding("ACI_CREDENTIAL_AMBIGUOUS", fixable=False)], ctx) == []


# --- the registry ------------------------------------------------------------------------------------


def test_every_fixable_cause_of_the_contract_has_exactly_one_fix() -> None:
    assert set(FIXES) == {
        "ACR_PULL_PERMISSION_MISSING",
        "ACR_PULL_PERMISSION_PROPAGATING",
        "ACR_ABAC_REPOSITORY_PERMISSIONS",
        "ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY",
        "ACR_TRUSTED_SERVICES_DISABLED",
        "ACI_API_VERSION_TOO_OLD",
        "ACI_CREDENTIAL_AMBIGUOUS",
        "ACI_IDENTITY_NOT_ATTACHED",
        "ACI_SYSTEM_IDENTITY_UNSUPPORTED",
        "ACI_CREDENTIAL_SERVER_MISSING",
        "UNKNOWN",  # only a retry: the recorded definition redeployed once
    }
    assert all(f.doc for f in FIXES.values())
    with pytest.raises(ValueError, match="two fixes"):
        fix("ACR_PULL_PERMISSION_MISSING", "again")(lambda f, c: [])


def test_checks_findings_flow_into_the_plan() -> None:
    """The real checks' evidence is what the planners read: a missing AcrPull becomes one grant."""
    from remediation.checks import run_checks

    ctx = replace(make_ctx(), assignments={IDENTITY_PRINCIPAL: ()})
    findings = run_checks(ctx)
    assert "ACR_PULL_PERMISSION_MISSING" in {f.code for f in findings}
    grants = only(plan(findings, ctx), "assign-role")
    assert [(g.target, g.params["principalId"]) for g in grants] == [(REGISTRY_ID, IDENTITY_PRINCIPAL)]
