"""Each check on hand-built contexts: it fires in its case and stays quiet in the near misses."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import remediation.checks
from remediation.checks import (
    DOCUMENTS,
    IMAGE_PULL_ERROR_CODES,
    UNKNOWN,
    all_checks,
    causes,
    check,
    run_checks,
)
from remediation.images import parse_image
from remediation.model import (
    Context,
    ErrorInfo,
    FailureSignal,
    Finding,
    GroupDefinition,
    Identity,
    ImageStatus,
    RbacRules,
    Registry,
    RegistryCredential,
    RoleAssignment,
    RoleDefinition,
)
from remediation.permissions import PULL_ACTION, REPOSITORY_CONTENT_READ
from tests import contract

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
RG = f"{SUB}/resourceGroups/rg-acr"
REGISTRY_ID = f"{RG}/providers/Microsoft.ContainerRegistry/registries/myacr"
SERVER = "myacr.azurecr.io"
GROUP_ID = f"{SUB}/resourceGroups/rg-apps/providers/Microsoft.ContainerInstance/containerGroups/web"
UAMI = f"{SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pull-id"
OTHER_UAMI = f"{SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/other"
PRINCIPAL = "9e1d2c3b-0000-4000-8000-000000000001"
IMAGE = f"{SERVER}/team/app:v1"

ACR_PULL = RoleDefinition("/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d",
                          "AcrPull", actions=(PULL_ACTION,))
ACR_PUSH = RoleDefinition("/providers/Microsoft.Authorization/roleDefinitions/8311e382-0749-4cb8-b61a-304f252e45ec",
                          "AcrPush", actions=(PULL_ACTION, "Microsoft.ContainerRegistry/registries/push/write"))
READER = RoleDefinition("/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
                        "Reader", actions=("*/read",))
REPO_READER = RoleDefinition(
    "/providers/Microsoft.Authorization/roleDefinitions/b93aa761-3e63-49ed-ac28-beffa264f7ac",
    "Container Registry Repository Reader", actions=("Microsoft.ContainerRegistry/registries/read",),
    data_actions=("Microsoft.ContainerRegistry/registries/repositories/metadata/read", REPOSITORY_CONTENT_READ))
CUSTOM_WILDCARD = RoleDefinition(
    f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/aaaaaaaa-0000-0000-0000-000000000001",
    "Registry operator", actions=("Microsoft.ContainerRegistry/registries/*",), role_type="CustomRole")
CUSTOM_NO_PULL = RoleDefinition(
    f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/aaaaaaaa-0000-0000-0000-000000000002",
    "Registry admin without pull", actions=("Microsoft.ContainerRegistry/*",),
    not_actions=("Microsoft.ContainerRegistry/registries/pull/read",), role_type="CustomRole")
ROLES = {r.guid: r for r in (ACR_PULL, ACR_PUSH, READER, REPO_READER, CUSTOM_WILDCARD, CUSTOM_NO_PULL)}


def grant(role: RoleDefinition, scope: str = REGISTRY_ID, condition: str | None = None) -> RoleAssignment:
    return RoleAssignment(f"{scope}/providers/Microsoft.Authorization/roleAssignments/{role.guid[:8]}", scope,
                          role.id, PRINCIPAL, condition)


def definition(
    *,
    credentials: tuple[RegistryCredential, ...] = (RegistryCredential(0, SERVER, identity=UAMI),),
    images: tuple[str, ...] = (IMAGE,),
    api_version: str | None = "2023-05-01",
    user_assigned: tuple[str, ...] = (UAMI,),
    subnet_ids: tuple[str, ...] = (),
    os_type: str | None = "Linux",
) -> GroupDefinition:
    return GroupDefinition(
        resource_id=GROUP_ID, body={}, api_version=api_version, source="replay", location="eastus",
        os_type=os_type, subnet_ids=subnet_ids, identity_type="UserAssigned" if user_assigned else None,
        user_assigned_identities=user_assigned, credentials=credentials,
        images=tuple(parse_image(i) for i in images),
    )


def registry(**changes: Any) -> Registry:
    base = Registry(id=REGISTRY_ID, name="myacr", login_server=SERVER, sku="Premium", public_network_access="Enabled",
                    default_action="Allow", bypass="AzureServices", role_assignment_mode="LegacyRegistryPermissions")
    return dataclasses.replace(base, **changes)


def context(
    *,
    assignments: tuple[RoleAssignment, ...] | None = (grant(ACR_PULL),),
    group: GroupDefinition | None = None,
    reg: Registry | None = None,
    error: str | None = "InaccessibleImage",
    **changes: Any,
) -> Context:
    """A healthy group (AcrPull at the registry, everything in order) unless told otherwise."""
    ctx = Context(
        signal=FailureSignal(GROUP_ID, SUB.rsplit("/", 1)[-1], "rg-apps", "web"),
        error=ErrorInfo(error, f"{error} happened in properties.imageRegistryCredentials[0]") if error else None,
        definition=group or definition(),
        registries={SERVER: reg or registry()},
        identities={UAMI.lower(): Identity(UAMI, PRINCIPAL, "client-1")},
        assignments={} if assignments is None else {PRINCIPAL: assignments},
        role_definitions=dict(ROLES),
        images=(ImageStatus(parse_image(IMAGE), True),),
    )
    return dataclasses.replace(ctx, **changes)


def codes(ctx: Context) -> list[str]:
    return [f.code for f in run_checks(ctx)]


def only(ctx: Context, code: str) -> Finding:
    findings = [f for f in run_checks(ctx) if f.code == code]
    assert len(findings) == 1, findings
    return findings[0]


# --- the registry -------------------------------------------------------------------------------


CHECK_MODULES = sorted(
    f"{remediation.checks.__name__}.{m.name}"
    for m in pkgutil.iter_modules(remediation.checks.__path__) if not m.name.startswith("_")
)


def test_every_cause_code_has_one_check_in_the_contract_order() -> None:
    checks = all_checks()
    codes = [c.code for c in causes()]
    assert codes == [c.code for c in checks] + ["UNKNOWN"]
    assert all(c.doc.strip() for c in causes())
    # One file per cause: no two checks share a module.
    assert len({c.function.__module__ for c in checks}) == len(checks)
    if not contract.CONTRACT.is_file():
        pytest.skip(f"{contract.CONTRACT} is not beside the repository")
    # The report order is the contract table's (its pending codes are not in the app yet); its retired
    # codes are never emitted, so no check registers them.
    table = [code for code in contract.cause_table() if code in codes]
    assert codes == table
    assert not set(contract.retired_codes()) & set(codes)


@pytest.mark.parametrize("module", CHECK_MODULES)
def test_every_check_module_registers_its_one_check(module: str) -> None:
    """A check function without ``@check`` would be imported and never run: each public function of a
    check module is its one registered check."""
    defined = [f for name, f in inspect.getmembers(importlib.import_module(module), inspect.isfunction)
               if f.__module__ == module and not name.startswith("_")]
    assert defined == [c.function for c in all_checks() if c.function.__module__ == module]
    assert len(defined) == 1


def test_check_modules_are_found_without_being_named() -> None:
    """Importing the package registers the check of every module in it (nobody keeps a list)."""
    script = "from remediation.checks import all_checks; print(sorted({c.function.__module__ for c in all_checks()}))"
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == str(CHECK_MODULES)


def test_the_registration_fills_in_every_finding() -> None:
    """The code, fixability, source and documents of a finding are the registration's."""
    ctx = context(assignments=(), group=definition(api_version="2019-12-01", subnet_ids=("s",), os_type="Windows"))
    registered = {c.code: c for c in all_checks()}
    for finding in run_checks(ctx):
        cause = registered[finding.code]
        assert (finding.fixable, finding.source) == (cause.fixable, cause.source)
        assert finding.evidence["documents"] == list(cause.documents)
    twice = context(group=definition(credentials=(RegistryCredential(0, SERVER), RegistryCredential(1, SERVER))))
    first, second = run_checks(twice)
    assert first.code == second.code == "ACI_CREDENTIAL_AMBIGUOUS"
    first.evidence["documents"][0]["note"] = "changed by a consumer"
    assert "note" not in second.evidence["documents"][0], "each finding has its own documents"


def test_image_pull_error_codes_are_the_guides_five() -> None:
    assert {
        "InvalidImageRegistryCredentialType", "AmbiguousImageResitryCredentialType", "InvalidImageRegistryIdentity",
        "InvalidRequestContent", "InaccessibleImage"} == IMAGE_PULL_ERROR_CODES


def test_a_second_check_for_a_code_is_refused() -> None:
    with pytest.raises(ValueError, match="two checks registered for ACR_NOT_FOUND"):
        check("ACR_NOT_FOUND", "again", rank=9999, fixable=False, source="troubleshooting guide")(
            lambda ctx, finding: [])


def test_a_second_check_for_a_rank_is_refused() -> None:
    """Two checks of one rank would be reported in whatever order they were imported."""
    rank = next(c.rank for c in all_checks() if c.code == "ACR_NOT_FOUND")
    with pytest.raises(ValueError, match=f"checks ACR_NOT_FOUND and NEW_CAUSE share rank {rank}"):
        check("NEW_CAUSE", "a new cause", rank=rank, fixable=False, source="troubleshooting guide")(
            lambda ctx, finding: [])
    assert "NEW_CAUSE" not in {c.code for c in causes()}


def test_unknown_is_the_fallback_not_a_check() -> None:
    with pytest.raises(ValueError, match="UNKNOWN is the fallback of run_checks"):
        check("UNKNOWN", "again", rank=9999, fixable=False, source="troubleshooting guide")
    assert "UNKNOWN" not in {c.code for c in all_checks()}
    assert causes()[-1] is UNKNOWN


def test_a_healthy_group_has_no_finding_but_unknown() -> None:
    assert codes(context(error=None)) == []
    finding = only(context(), "UNKNOWN")
    assert codes(context()) == ["UNKNOWN"]
    assert finding.evidence["errorCode"] == "InaccessibleImage"
    assert finding.evidence["errorMessage"] == "InaccessibleImage happened in properties.imageRegistryCredentials[0]"
    assert finding.fixable is False


def test_findings_are_json_serialisable_and_checks_are_repeatable() -> None:
    ctx = context(assignments=(), group=definition(api_version="2019-12-01", subnet_ids=("s",), os_type="Windows"))
    first = run_checks(ctx)
    assert first == run_checks(ctx)
    json.dumps([dataclasses.asdict(f) for f in first])
    assert {f.code for f in first} == {"ACI_API_VERSION_TOO_OLD", "ACR_PULL_PERMISSION_MISSING"}


# --- definition causes -------------------------------------------------------------------------


@pytest.mark.parametrize(("api_version", "fires"), [
    ("2021-03-01", True), ("2019-12-01", True), ("2021-07-01", False), ("2023-05-01", False), (None, False),
])
def test_api_version_too_old(api_version: str | None, fires: bool) -> None:
    ctx = context(group=definition(api_version=api_version))
    assert ("ACI_API_VERSION_TOO_OLD" in codes(ctx)) is fires
    if fires:
        finding = only(ctx, "ACI_API_VERSION_TOO_OLD")
        assert finding.fixable is True
        assert finding.evidence["apiVersion"] == api_version
        assert finding.evidence["proposedApiVersion"] == "2023-05-01"


def test_old_api_version_with_password_credential_is_fine() -> None:
    group = definition(api_version="2019-12-01",
                       credentials=(RegistryCredential(0, SERVER, username="u", has_password=True),))
    assert "ACI_API_VERSION_TOO_OLD" not in codes(context(group=group))


def test_api_version_reported_by_the_service() -> None:
    ctx = context(group=definition(api_version=None), error="InvalidImageRegistryCredentialType")
    assert only(ctx, "ACI_API_VERSION_TOO_OLD").evidence["errorCode"] == "InvalidImageRegistryCredentialType"


@pytest.mark.parametrize(("credential", "problem"), [
    (RegistryCredential(0, SERVER, username="u", has_password=True, identity=UAMI), "both"),
    (RegistryCredential(0, SERVER), "neither"),
    (RegistryCredential(0, SERVER, username="u", has_password=True), None),
    (RegistryCredential(0, SERVER, identity=UAMI), None),
])
def test_credential_ambiguous(credential: RegistryCredential, problem: str | None) -> None:
    ctx = context(group=definition(credentials=(RegistryCredential(1, "other.io", identity=UAMI),
                                                dataclasses.replace(credential, index=2))))
    found = [f for f in run_checks(ctx) if f.code == "ACI_CREDENTIAL_AMBIGUOUS"]
    if problem is None:
        assert found == []
        return
    (finding,) = found
    assert (finding.evidence["credentialIndex"], finding.evidence["problem"]) == (2, problem)
    assert finding.evidence["fieldsSet"] == (["username", "password", "identity"] if problem == "both" else [])
    assert finding.fixable is False


def test_identity_not_attached() -> None:
    ctx = context(group=definition(credentials=(RegistryCredential(0, SERVER, identity=OTHER_UAMI),)))
    finding = only(ctx, "ACI_IDENTITY_NOT_ATTACHED")
    assert finding.evidence["credentialIndex"] == 0 and finding.evidence["field"] == "identity"
    assert finding.evidence["identity"] == OTHER_UAMI
    assert finding.evidence["userAssignedIdentities"] == [UAMI]
    assert finding.fixable is False


def test_identity_attached_in_another_case_is_attached() -> None:
    ctx = context(group=definition(credentials=(RegistryCredential(0, SERVER, identity=UAMI.upper()),)))
    assert "ACI_IDENTITY_NOT_ATTACHED" not in codes(ctx)


@pytest.mark.parametrize("reference", ["[system]", "system", "[SYSTEM]"])
def test_system_identity_unsupported(reference: str) -> None:
    ctx = context(group=definition(credentials=(RegistryCredential(0, SERVER, identity=reference),)))
    found = codes(ctx)
    assert "ACI_SYSTEM_IDENTITY_UNSUPPORTED" in found
    assert "ACI_IDENTITY_NOT_ATTACHED" not in found
    finding = only(ctx, "ACI_SYSTEM_IDENTITY_UNSUPPORTED")
    assert finding.evidence["proposal"] == f"use the attached user-assigned identity {UAMI}"
    assert not finding.fixable


def test_credential_server_missing_proposes_the_images_registry() -> None:
    ctx = context(group=definition(credentials=(RegistryCredential(0, None, identity=UAMI),),
                                   images=(IMAGE, "nginx:1")))
    finding = only(ctx, "ACI_CREDENTIAL_SERVER_MISSING")
    assert finding.evidence["credentialIndex"] == 0 and finding.evidence["field"] == "server"
    assert finding.evidence["proposedServer"] == SERVER and finding.evidence["candidateServers"] == [SERVER]
    assert "ACI_CREDENTIAL_SERVER_MISSING" not in codes(context())


# --- limitations the current documentation no longer lists ---------------------------------------


@pytest.mark.parametrize("group", [definition(subnet_ids=("/subnets/aci",)), definition(os_type="Windows")],
                         ids=["vnet-injected", "windows"])
def test_vnet_injected_and_windows_groups_are_diagnosed_like_any_other(group: Any) -> None:
    # Retired codes (CONTRACT.md §1): the ACI article (2026-07) supports both with a user-assigned
    # identity, so only the missing pull role is reported, and it is fixable.
    assert codes(context(group=group, assignments=())) == ["ACR_PULL_PERMISSION_MISSING"]
    assert codes(context(group=group)) == ["UNKNOWN"]


# --- pull permission (legacy mode) --------------------------------------------------------------


def test_no_assignment_at_all() -> None:
    finding = only(context(assignments=()), "ACR_PULL_PERMISSION_MISSING")
    assert finding.fixable is True
    assert finding.evidence["registryId"] == REGISTRY_ID and finding.evidence["principalId"] == PRINCIPAL
    assert finding.evidence["loginServer"] == SERVER and finding.evidence["identity"] == UAMI
    assert finding.evidence["assignmentsConsidered"] == []
    assert "UNKNOWN" not in codes(context(assignments=()))


@pytest.mark.parametrize("assignment", [
    grant(ACR_PULL),
    grant(ACR_PULL, RG),
    grant(ACR_PULL, SUB),
    grant(ACR_PUSH),
    grant(READER, SUB),
    grant(ACR_PULL, "/providers/Microsoft.Management/managementGroups/root"),
    dataclasses.replace(grant(ACR_PULL), principal_id="0a0a0a0a-0000-0000-0000-00000000000e"),
], ids=["acrpull", "acrpull-rg", "acrpull-sub", "acrpush", "reader-sub", "acrpull-mg", "acrpull-through-group"])
def test_pull_granted_does_not_fire(assignment: RoleAssignment) -> None:
    # "acrpull-through-group": assignedTo lists a group's assignment under the identity (principalId the group's)
    assert "ACR_PULL_PERMISSION_MISSING" not in codes(context(assignments=(assignment,)))


@pytest.mark.parametrize(("private_link", "fires"), [(False, True), (True, False)])
def test_a_custom_roles_wildcard_counts_as_pull_only_with_arm_private_link(private_link: bool, fires: bool) -> None:
    ctx = context(assignments=(grant(CUSTOM_WILDCARD, RG),), rbac=RbacRules(custom_wildcards=private_link))
    assert ("ACR_PULL_PERMISSION_MISSING" in codes(ctx)) is fires
    if fires:
        (considered,) = only(ctx, "ACR_PULL_PERMISSION_MISSING").evidence["assignmentsConsidered"]
        assert "only in tenants with Azure Resource Manager private link" in considered["reason"]


def test_built_in_wildcards_and_explicit_custom_actions_count_without_arm_private_link() -> None:
    explicit = dataclasses.replace(CUSTOM_WILDCARD, actions=("Microsoft.ContainerRegistry/registries/*", PULL_ACTION))
    ctx = context(assignments=(grant(explicit, RG),), role_definitions={**ROLES, explicit.guid: explicit})
    assert "ACR_PULL_PERMISSION_MISSING" not in codes(ctx)
    assert "ACR_PULL_PERMISSION_MISSING" not in codes(context(assignments=(grant(READER, SUB),)))  # "*/read"


def test_assignments_that_do_not_grant_are_explained() -> None:
    sibling = grant(ACR_PULL, f"{SUB}/resourceGroups/rg-acr2")
    no_pull = grant(CUSTOM_NO_PULL, RG)
    repo_reader = grant(REPO_READER)
    finding = only(context(assignments=(sibling, no_pull, repo_reader)), "ACR_PULL_PERMISSION_MISSING")
    considered = finding.evidence["assignmentsConsidered"]
    assert [(c["role"], c["grants"]) for c in considered] == [
        ("AcrPull", False), ("Registry admin without pull", False), ("Container Registry Repository Reader", False)]
    assert "which is not" in considered[0]["reason"]
    assert "notActions removes it" in considered[1]["reason"]
    assert f"no actions entry matching {PULL_ACTION}" in considered[2]["reason"]


@pytest.mark.parametrize("changes", [
    {"assignments": {}},
    {"identities": {}},
    {"identities": {UAMI.lower(): Identity(UAMI, None, None)}},
    {"identities": {UAMI.lower(): Identity(UAMI, PRINCIPAL, None, found=False)}},
    {"registries": {}},
], ids=["assignments-unread", "identity-unread", "no-principal", "identity-missing", "registry-not-looked-up"])
def test_missing_data_does_not_fire(changes: dict[str, Any]) -> None:
    ctx = dataclasses.replace(context(assignments=()), **changes)
    found = codes(ctx)
    assert "ACR_PULL_PERMISSION_MISSING" not in found and "ACR_ABAC_REPOSITORY_PERMISSIONS" not in found


def test_unreadable_role_definition_does_not_fire() -> None:
    ghost = RoleAssignment("a/ghost", REGISTRY_ID, f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/ffff",
                           PRINCIPAL)
    assert "ACR_PULL_PERMISSION_MISSING" not in codes(context(assignments=(ghost,)))


def test_credential_for_a_registry_no_image_uses_is_not_a_cause() -> None:
    group = definition(credentials=(RegistryCredential(0, SERVER, identity=UAMI),), images=("nginx",))
    assert "ACR_PULL_PERMISSION_MISSING" not in codes(context(assignments=(), group=group))


# --- ABAC repository permissions ------------------------------------------------------------------


ABAC = registry(role_assignment_mode="AbacRepositoryPermissions")
CONDITION = ("((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR "
             "(@Resource[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase '%s'))")


def test_abac_with_acrpull_only_fires_abac_not_legacy() -> None:
    found = codes(context(reg=ABAC, assignments=(grant(ACR_PULL),)))
    assert "ACR_ABAC_REPOSITORY_PERMISSIONS" in found
    assert "ACR_PULL_PERMISSION_MISSING" not in found
    finding = only(context(reg=ABAC, assignments=(grant(ACR_PULL),)), "ACR_ABAC_REPOSITORY_PERMISSIONS")
    assert finding.fixable is True
    assert finding.evidence["repositories"] == ["team/app"]
    assert finding.evidence["registryId"] == REGISTRY_ID and finding.evidence["principalId"] == PRINCIPAL
    (considered,) = finding.evidence["assignmentsConsidered"]["team/app"]
    assert considered["role"] == "AcrPull" and "no dataActions entry" in considered["reason"]


def test_legacy_registry_never_fires_abac() -> None:
    assert "ACR_ABAC_REPOSITORY_PERMISSIONS" not in codes(context(assignments=()))


ABAC_CODES = {"ACR_ABAC_REPOSITORY_PERMISSIONS", "ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY"}


@pytest.mark.parametrize(("assignment", "fires"), [
    (grant(REPO_READER), None),
    (grant(REPO_READER, RG), None),
    (grant(REPO_READER, condition=CONDITION % "team/app"), None),
    (grant(REPO_READER, condition=CONDITION % "TEAM/APP"), None),
    (grant(REPO_READER, condition=CONDITION % "team/other"), "ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY"),
    (grant(REPO_READER, condition="@Resource[x] Gibberish 'team/app'"), "ACR_ABAC_REPOSITORY_PERMISSIONS"),
    (grant(REPO_READER, f"{SUB}/resourceGroups/elsewhere"), "ACR_ABAC_REPOSITORY_PERMISSIONS"),
    (grant(READER, SUB), "ACR_ABAC_REPOSITORY_PERMISSIONS"),
], ids=["reader", "reader-rg", "conditioned-here", "conditioned-any-case", "conditioned-elsewhere", "unreadable",
        "other-scope", "control-plane-reader"])
def test_abac_repository_reader(assignment: RoleAssignment, fires: str | None) -> None:
    found = codes(context(reg=ABAC, assignments=(assignment,)))
    assert ABAC_CODES & set(found) == ({fires} if fires else set())
    assert "ACR_PULL_PERMISSION_MISSING" not in found


def test_abac_lists_only_the_repositories_that_are_not_readable() -> None:
    group = definition(images=(IMAGE, f"{SERVER}/team/web:2", f"{SERVER}/base:1"))
    starts = "@Resource[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWith 'team/'"
    finding = only(context(reg=ABAC, group=group, assignments=(grant(REPO_READER, condition=starts),)),
                   "ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY")
    assert finding.evidence["repositories"] == ["base"]
    assert set(finding.evidence["assignmentsConsidered"]) == {"base", "team/app", "team/web"}


def test_unreadable_condition_is_said_in_the_evidence() -> None:
    ctx = context(reg=ABAC, assignments=(grant(REPO_READER, condition="@Resource[x] Gibberish 'a'"),))
    (considered,) = only(ctx, "ACR_ABAC_REPOSITORY_PERMISSIONS").evidence["assignmentsConsidered"]["team/app"]
    assert "condition could not be read" in considered["reason"]


def test_a_condition_in_the_documented_request_form_that_leaves_a_repository_out_is_the_condition_cause() -> None:
    request = CONDITION.replace("@Resource", "@Request") % "team/app"
    group = definition(images=(IMAGE, f"{SERVER}/team/db:1"))
    held = grant(REPO_READER, RG, condition=request)
    ctx = context(reg=ABAC, group=group, assignments=(held,))
    finding = only(ctx, "ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY")
    assert "ACR_ABAC_REPOSITORY_PERMISSIONS" not in codes(ctx)
    assert finding.fixable is True and finding.evidence["repositories"] == ["team/db"]
    assert [e["id"] for e in finding.evidence["excludedBy"]] == [held.id]
    assert "additionalAssignment" not in finding.evidence


def test_an_excluding_repository_reader_at_the_registry_itself_cannot_be_doubled() -> None:
    """Azure keeps one assignment per (principal, role, scope): the condition cause is then a proposal."""
    held = grant(REPO_READER, condition=CONDITION % "team/other")
    finding = only(context(reg=ABAC, assignments=(held,)), "ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY")
    assert finding.fixable is False
    assert held.id in finding.evidence["additionalAssignment"]
    assert "'team/app'" in finding.evidence["suggestedCondition"]


# --- a pull role still propagating ------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def aged(assignment: RoleAssignment, seconds: float | None) -> RoleAssignment:
    return dataclasses.replace(assignment, created_on=None if seconds is None else NOW - timedelta(seconds=seconds))


@pytest.mark.parametrize(("ages", "minutes", "fires"), [
    ((60,), 10, True),
    ((599,), 10, True),
    ((600,), 10, False),
    ((60,), 0, False),
    ((60, 3600), 10, False),
    ((None,), 10, False),
    ((-30,), 10, True),
], ids=["young", "just-young", "old-enough", "window-off", "an-older-one-grants", "age-unknown", "clock-skew"])
def test_pull_permission_propagating(ages: tuple[float | None, ...], minutes: int, fires: bool) -> None:
    scopes = (REGISTRY_ID, RG)
    held = tuple(aged(grant(ACR_PULL, scopes[i]), age) for i, age in enumerate(ages))
    ctx = context(assignments=held, read_at=NOW, rbac=RbacRules(propagation_minutes=minutes))
    found = codes(ctx)
    assert ("ACR_PULL_PERMISSION_PROPAGATING" in found) is fires
    assert "ACR_PULL_PERMISSION_MISSING" not in found  # a grant exists, however young
    if fires:
        finding = only(ctx, "ACR_PULL_PERMISSION_PROPAGATING")
        assert finding.fixable is True and finding.evidence["propagationMinutes"] == minutes
        assert [p["id"] for p in finding.evidence["propagating"]] == [held[0].id]


def test_a_young_repository_reader_on_an_abac_registry_is_propagating_too() -> None:
    ctx = context(reg=ABAC, assignments=(aged(grant(REPO_READER, condition=CONDITION % "team/app"), 30),),
                  read_at=NOW)
    assert codes(ctx) == ["ACR_PULL_PERMISSION_PROPAGATING"]
    assert codes(dataclasses.replace(ctx, read_at=None)) == ["UNKNOWN"]


# --- every cause names its documents -------------------------------------------------------------------


def test_every_cause_names_each_document_with_title_url_and_date() -> None:
    for cause in causes():
        assert cause.documents, cause.code
        assert cause.source in DOCUMENTS, cause.code
        for entry in cause.documents:
            known = DOCUMENTS[entry["name"]]
            assert (entry["title"], entry["url"], entry["date"]) == (known.title, known.url, known.date)
            assert entry["title"] and entry["url"].startswith("https://learn.microsoft.com/")
            assert datetime.strptime(entry["date"], "%Y-%m-%d")
    assert DOCUMENTS["troubleshooting guide"].date == "2026-09-09" and DOCUMENTS["current docs"].date == "2026-07-25"


def test_causes_from_another_document_name_it() -> None:
    registered = {c.code: {d["name"] for d in c.documents} for c in causes()}
    assert "RBAC troubleshooting" in registered["ACR_PULL_PERMISSION_PROPAGATING"]
    assert "ACR ABAC repository permissions" in registered["ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY"]
    assert "ACR ABAC repository permissions" in registered["ACR_ABAC_REPOSITORY_PERMISSIONS"]
    assert "ACR custom roles" in registered["ACR_PULL_PERMISSION_MISSING"]


# --- registry network, existence ----------------------------------------------------------------


@pytest.mark.parametrize(("changes", "fires"), [
    ({"public_network_access": "Disabled", "bypass": "None"}, True),
    ({"default_action": "Deny", "bypass": "none"}, True),
    ({"public_network_access": "Disabled", "default_action": "Deny", "bypass": "None"}, True),
    ({"bypass": "None"}, False),
    ({"public_network_access": "Disabled", "bypass": "AzureServices"}, False),
    ({"default_action": "Deny", "bypass": None}, False),
], ids=["public-off", "deny", "both", "not-restricted", "trusted-on", "bypass-unknown"])
def test_trusted_services_disabled(changes: dict[str, Any], fires: bool) -> None:
    ctx = context(reg=registry(**changes))
    assert ("ACR_TRUSTED_SERVICES_DISABLED" in codes(ctx)) is fires
    if fires:
        finding = only(ctx, "ACR_TRUSTED_SERVICES_DISABLED")
        assert finding.fixable is True and finding.evidence["registryId"] == REGISTRY_ID
        assert finding.evidence["networkRuleBypassOptions"].lower() == "none"


def test_trusted_services_only_matter_for_identity_pulls() -> None:
    password = (RegistryCredential(0, SERVER, username="u", has_password=True),)
    ctx = context(group=definition(credentials=password), reg=registry(public_network_access="Disabled", bypass="None"))
    assert "ACR_TRUSTED_SERVICES_DISABLED" not in codes(ctx)


def test_registry_not_found() -> None:
    ctx = context(registries={SERVER: None}, images=())
    finding = only(ctx, "ACR_NOT_FOUND")
    assert finding.evidence["loginServer"] == SERVER and finding.evidence["images"] == [IMAGE]
    assert finding.fixable is False
    assert "ACR_PULL_PERMISSION_MISSING" not in codes(ctx)
    assert "ACR_NOT_FOUND" not in codes(context(registries={}))


def test_non_acr_registries_are_never_not_found() -> None:
    group = definition(images=("docker.io/library/nginx", "quay.io/org/app:1"),
                       credentials=(RegistryCredential(0, "quay.io", username="u", has_password=True),))
    ctx = context(group=group, registries={"docker.io": None, "quay.io": None}, images=())
    assert "ACR_NOT_FOUND" not in codes(ctx)


@pytest.mark.parametrize(("exists", "fires"), [(False, True), (None, False), (True, False)])
def test_image_not_found(exists: bool | None, fires: bool) -> None:
    ctx = context(images=(ImageStatus(parse_image(IMAGE), exists, "manifest unknown"),))
    assert ("ACR_IMAGE_NOT_FOUND" in codes(ctx)) is fires
    if fires:
        finding = only(ctx, "ACR_IMAGE_NOT_FOUND")
        assert finding.evidence["repository"] == "team/app" and finding.evidence["reference"] == "v1"
        assert finding.evidence["detail"] == "manifest unknown" and not finding.fixable


# --- UNKNOWN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(IMAGE_PULL_ERROR_CODES - {"InvalidImageRegistryCredentialType"}))
def test_unknown_for_each_image_pull_code(code: str) -> None:
    notes = ("whether myacr.azurecr.io/team/app:v1 exists is unknown: 403",)
    finding = only(context(error=code, notes=notes), "UNKNOWN")
    assert finding.evidence["errorCode"] == code and finding.evidence["notes"] == list(notes)


def test_unknown_needs_an_image_pull_error_and_no_other_finding() -> None:
    assert codes(context(error="Conflict")) == []
    assert codes(context(error=None)) == []
    assert codes(context(assignments=())) == ["ACR_PULL_PERMISSION_MISSING"]


def test_without_a_definition_only_error_driven_checks_can_fire() -> None:
    assert codes(context(definition=None)) == ["UNKNOWN"]
    assert codes(context(definition=None, error="InvalidImageRegistryCredentialType")) == ["ACI_API_VERSION_TOO_OLD"]


def test_invalid_request_content_is_an_image_pull_error_only_about_registry_credentials() -> None:
    from remediation.checks import is_image_pull_error

    server = ("The request content was invalid and could not be deserialized: 'Required property 'server' not "
              "found in JSON. Path 'properties.imageRegistryCredentials[0]', line 1, position 586.'.")
    other = ("The request content was invalid and could not be deserialized: 'Could not find member 'foo' on "
             "object of type 'ContainerGroupProperties'. Path 'properties.foo', line 1, position 20.'.")
    assert is_image_pull_error("InvalidRequestContent", server)
    assert not is_image_pull_error("InvalidRequestContent", other)
    assert is_image_pull_error("InaccessibleImage", "")
    assert not is_image_pull_error("QuotaExceeded", "")
