"""The product's own RBAC evaluation: wildcards, notActions, scopes, conditions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from remediation.model import Registry, RoleAssignment, RoleDefinition
from remediation.permissions import (
    PULL_ACTION,
    REGISTRY_WRITE,
    REPOSITORY_CONTENT_READ,
    REPOSITORY_NAME_ATTRIBUTE,
    action_matches,
    age_seconds,
    condition_allows,
    condition_readable,
    evaluate_assignment,
    explain_repository_read,
    granting_assignments,
    pull_right,
    registry_write_right,
    repository_roles_excluding,
    role_grant_reason,
    scope_applies,
    still_propagating,
)

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
RG = f"{SUB}/resourceGroups/rg-acr"
REGISTRY = f"{RG}/providers/Microsoft.ContainerRegistry/registries/myacr"
PRINCIPAL = "9e1d2c3b-0000-4000-8000-000000000001"

ACR_PULL = RoleDefinition("/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d",
                          "AcrPull", actions=(PULL_ACTION,))
READER = RoleDefinition("/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
                        "Reader", actions=("*/read",))
REPO_READER = RoleDefinition(
    "/providers/Microsoft.Authorization/roleDefinitions/b93aa761-3e63-49ed-ac28-beffa264f7ac",
    "Container Registry Repository Reader",
    actions=("Microsoft.ContainerRegistry/registries/read",),
    data_actions=("Microsoft.ContainerRegistry/registries/repositories/metadata/read", REPOSITORY_CONTENT_READ),
)
NO_PULL = RoleDefinition(f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/11111111-0000-0000-0000-00000000aa",
                         "Registry all but pull", actions=("Microsoft.ContainerRegistry/*",),
                         not_actions=("Microsoft.ContainerRegistry/registries/pull/*",), role_type="CustomRole")
ROLES = {r.guid: r for r in (ACR_PULL, READER, REPO_READER, NO_PULL)}

REPO_CONDITION = (
    "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND "
    "!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR "
    "(@Resource[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'team/app'))"
)


def assignment(role: RoleDefinition, scope: str = REGISTRY, condition: str | None = None, n: int = 1) -> RoleAssignment:
    return RoleAssignment(id=f"{scope}/providers/Microsoft.Authorization/roleAssignments/a{n}", scope=scope,
                          role_definition_id=role.id, principal_id=PRINCIPAL, condition=condition)


def repo(name: str) -> dict[str, str]:
    return {REPOSITORY_NAME_ATTRIBUTE: name}


@pytest.mark.parametrize(("pattern", "operation", "expected"), [
    (PULL_ACTION, PULL_ACTION, True),
    ("microsoft.containerregistry/REGISTRIES/pull/read", PULL_ACTION, True),
    ("*", PULL_ACTION, True),
    ("*/read", PULL_ACTION, True),
    ("Microsoft.ContainerRegistry/*", PULL_ACTION, True),
    ("Microsoft.ContainerRegistry/registries/*/read", PULL_ACTION, True),
    ("Microsoft.ContainerRegistry/registries/read", PULL_ACTION, False),
    ("Microsoft.ContainerRegistry/registries/push/write", PULL_ACTION, False),
    ("*/write", PULL_ACTION, False),
    ("Microsoft.ContainerRegistry/registries/pull/read/extra", PULL_ACTION, False),
    ("Microsoft.Container*", PULL_ACTION, True),
    ("Microsoft.ContainerRegistry/registries/pull/rea.", PULL_ACTION, False),
])
def test_action_matches(pattern: str, operation: str, expected: bool) -> None:
    assert action_matches(pattern, operation) is expected


@pytest.mark.parametrize(("scope", "target", "expected"), [
    (REGISTRY, REGISTRY, True),
    (REGISTRY.upper() + "/", REGISTRY, True),
    (RG, REGISTRY, True),
    (SUB, REGISTRY, True),
    ("/", REGISTRY, True),
    (f"{SUB}/resourceGroups/rg-ac", REGISTRY, False),
    (f"{SUB}/resourceGroups/rg-acr2", f"{SUB}/resourceGroups/rg-acr", False),
    (f"{RG}/providers/Microsoft.ContainerRegistry/registries/myacr2", REGISTRY, False),
    ("/subscriptions/00000000-0000-0000-0000-000000000002", REGISTRY, False),
    (f"{REGISTRY}/repositories/app", REGISTRY, False),
    ("/providers/Microsoft.Management/managementGroups/root-mg", REGISTRY, True),
])
def test_scope_applies(scope: str, target: str, expected: bool) -> None:
    assert scope_applies(scope, target) is expected


def test_not_actions_remove_what_actions_grant() -> None:
    grants, why = role_grant_reason(NO_PULL, PULL_ACTION)
    assert not grants
    assert why == (f"role Registry all but pull allows {PULL_ACTION} through 'Microsoft.ContainerRegistry/*' but "
                   "notActions removes it through 'Microsoft.ContainerRegistry/registries/pull/*'")
    assert role_grant_reason(NO_PULL, "Microsoft.ContainerRegistry/registries/push/write")[0]


def test_actions_and_data_actions_are_separate() -> None:
    assert role_grant_reason(ACR_PULL, PULL_ACTION)[0]
    assert not role_grant_reason(ACR_PULL, PULL_ACTION, data=True)[0]
    assert not role_grant_reason(ACR_PULL, REPOSITORY_CONTENT_READ, data=True)[0]
    assert role_grant_reason(REPO_READER, REPOSITORY_CONTENT_READ, data=True)[0]
    assert not role_grant_reason(REPO_READER, PULL_ACTION)[0]
    denied = RoleDefinition("x/d", "denied", data_actions=("*",), not_data_actions=(REPOSITORY_CONTENT_READ,))
    assert not role_grant_reason(denied, REPOSITORY_CONTENT_READ, data=True)[0]


def test_granting_assignments_across_scopes_and_roles() -> None:
    inherited = assignment(ACR_PULL, RG, n=1)
    elsewhere = assignment(ACR_PULL, f"{SUB}/resourceGroups/other", n=2)
    reader = assignment(READER, SUB, n=3)
    no_pull = assignment(NO_PULL, REGISTRY, n=4)
    assert granting_assignments([elsewhere, no_pull], ROLES, PULL_ACTION, REGISTRY) == []
    assert granting_assignments([elsewhere, inherited, no_pull, reader], ROLES, PULL_ACTION, REGISTRY) == [
        inherited, reader]


def test_unknown_role_is_undecided_not_granting() -> None:
    ghost = RoleAssignment("a/ghost", REGISTRY, f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/abc",
                           PRINCIPAL)
    verdict = evaluate_assignment(ghost, ROLES, PULL_ACTION, REGISTRY)
    assert (verdict.grants, verdict.decided) == (False, False)
    assert verdict.reason == "role definition abc could not be read"
    out_of_scope = evaluate_assignment(RoleAssignment("a/x", f"{SUB}/resourceGroups/o", ghost.role_definition_id,
                                                      PRINCIPAL), ROLES, PULL_ACTION, REGISTRY)
    assert (out_of_scope.grants, out_of_scope.decided) == (False, True)


def test_repository_condition_grants_only_its_repository() -> None:
    conditioned = assignment(REPO_READER, condition=REPO_CONDITION)
    for name, expected in (("team/app", True), ("TEAM/App", True), ("team/other", False), ("team/app2", False)):
        granted = granting_assignments([conditioned], ROLES, REPOSITORY_CONTENT_READ, REGISTRY, data=True,
                                       resource_attributes=repo(name))
        assert (granted == [conditioned]) is expected, name
    verdict = evaluate_assignment(conditioned, ROLES, REPOSITORY_CONTENT_READ, REGISTRY, data=True,
                                  resource_attributes=repo("team/other"))
    assert verdict.reason.endswith("but its condition does not allow it for name='team/other'")
    assert verdict.as_evidence() == {
        "id": conditioned.id, "role": "Container Registry Repository Reader", "scope": REGISTRY,
        "condition": REPO_CONDITION, "grants": False, "reason": verdict.reason}


# The documented form (MicrosoftDocs azure-management-docs,
# container-registry-rbac-abac-repository-permissions.md): the repository name is a request attribute.
REQUEST_CONDITION = REPO_CONDITION.replace("@Resource[", "@Request[")


@pytest.mark.parametrize("condition", [REQUEST_CONDITION, REPO_CONDITION], ids=["Request", "Resource"])
def test_a_repository_read_honours_both_attribute_sources(condition: str) -> None:
    conditioned = assignment(REPO_READER, condition=condition)
    for name, expected in (("team/app", True), ("Team/APP", True), ("team/other", False)):
        verdicts = explain_repository_read([conditioned], ROLES, REGISTRY, name)
        assert [v.grants for v in verdicts] == [expected], name


def test_condition_without_the_attribute_does_not_grant() -> None:
    conditioned = assignment(REPO_READER, condition=REPO_CONDITION)
    assert granting_assignments([conditioned], ROLES, REPOSITORY_CONTENT_READ, REGISTRY, data=True) == []


def test_unconditioned_repository_reader_is_registry_wide() -> None:
    plain = assignment(REPO_READER)
    assert granting_assignments([plain], ROLES, REPOSITORY_CONTENT_READ, REGISTRY, data=True,
                                resource_attributes=repo("anything")) == [plain]


ATTR = f"@Resource[{REPOSITORY_NAME_ATTRIBUTE}]"


@pytest.mark.parametrize(("condition", "name", "expected"), [
    (f"{ATTR} StringEquals 'team/app'", "team/app", True),
    (f"{ATTR} StringEquals 'team/app'", "Team/App", False),
    (f"{ATTR} StringEqualsIgnoreCase 'team/app'", "Team/App", True),
    (f"{ATTR} StringNotEquals 'team/app'", "team/web", True),
    (f"{ATTR} StringNotEquals 'team/app'", "team/app", False),
    (f"{ATTR} StringStartsWith 'team/'", "team/app", True),
    (f"{ATTR} StringStartsWith 'team/'", "Team/app", False),
    (f"{ATTR} StringStartsWithIgnoreCase 'team/'", "TEAM/app", True),
    (f"{ATTR} StringNotStartsWithIgnoreCase 'team/'", "TEAM/app", False),
    (f"{ATTR} StringLike 'team/*'", "team/app/sub", True),
    (f"{ATTR} StringLike 'team/?pp'", "team/app", True),
    (f"{ATTR} StringLike 'team/?pp'", "team/appp", False),
    (f"{ATTR} StringLike 'team/*'", "TEAM/app", False),
    (f"{ATTR} ForAnyOfAnyValues:StringEqualsIgnoreCase {{'a', 'team/app', 'b'}}", "Team/App", True),
    (f"{ATTR} ForAnyOfAnyValues:StringEqualsIgnoreCase {{'a', 'b'}}", "team/app", False),
    (f"{ATTR} ForAllOfAnyValues:StringStartsWith {{'x/', 'team/'}}", "team/app", True),
    (f"{ATTR} ForAnyOfAllValues:StringStartsWith {{'t', 'team/'}}", "team/app", True),
    (f"{ATTR} ForAllOfAllValues:StringStartsWith {{'x', 'team/'}}", "team/app", False),
    # AND binds tighter than OR, ! tighter than AND; words and symbols both work.
    (f"{ATTR} StringEquals 'x' OR {ATTR} StringEquals 'team/app' AND {ATTR} StringEquals 'y'", "team/app", False),
    (f"({ATTR} StringEquals 'x' || {ATTR} StringEquals 'team/app') && !({ATTR} StringEquals 'y')", "team/app", True),
    (f"NOT ({ATTR} StringEquals 'team/app')", "team/app", False),
    (f"!(ActionMatches{{'{REPOSITORY_CONTENT_READ}'}}) OR {ATTR} StringEquals 'team/app'", "other", False),
    ("!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/*/write'})", "other", True),
    ("ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/*'}", "other", True),
    (f"SubOperationMatches{{'Blob.List'}} OR {ATTR} StringEquals 'team/app'", "team/app", True),
    ("SubOperationMatches{'Blob.List'}", "team/app", False),
    (f"(\n  (\n    {ATTR} StringEqualsIgnoreCase 'team/app'\n  )\n)\n", "team/app", True),
])
def test_condition_forms(condition: str, name: str, expected: bool) -> None:
    assert condition_readable(condition)
    assert condition_allows(condition, action=REPOSITORY_CONTENT_READ, resource_attributes=repo(name)) is expected


def test_missing_attribute_satisfies_only_negated_operators() -> None:
    assert not condition_allows(f"{ATTR} StringEquals 'a'", action=REPOSITORY_CONTENT_READ)
    assert condition_allows(f"{ATTR} StringNotEquals 'a'", action=REPOSITORY_CONTENT_READ)


def test_attribute_names_compare_case_insensitively() -> None:
    text = "@Resource[microsoft.containerregistry/registries/repositories:NAME] StringEquals 'app'"
    assert condition_allows(text, action=REPOSITORY_CONTENT_READ, resource_attributes=repo("app"))


def test_delegation_condition_on_request_attributes() -> None:
    text = (
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
        "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
        "{7f951dda-4ed3-4680-a7ca-43fe172d538d, b93aa761-3e63-49ed-ac28-beffa264f7ac}))"
    )
    write = "Microsoft.Authorization/roleAssignments/write"
    key = "Microsoft.Authorization/roleAssignments:RoleDefinitionId"
    acr_pull_id = f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/7F951DDA-4ED3-4680-A7CA-43FE172D538D"
    owner_id = f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    assert condition_allows(text, action=write, request_attributes={key: acr_pull_id})
    assert not condition_allows(text, action=write, request_attributes={key: owner_id})
    assert condition_allows(text, action="Microsoft.Authorization/roleAssignments/delete")


@pytest.mark.parametrize("condition", [
    "",
    "(",
    f"({ATTR} StringEquals 'a'",
    f"{ATTR} StringEquals 'a')",
    f"{ATTR} NumericLessThan 5",
    f"{ATTR} StringSoundsLike 'a'",
    f"{ATTR} ForSomeValues:StringEquals 'a'",
    f"{ATTR} StringEquals",
    f"{ATTR} StringEquals 'a' AND",
    f"{ATTR} StringEquals 'a' {ATTR} StringEquals 'b'",
    "@Resource[x StringEquals 'a'",
    "this is prose",
])
def test_unreadable_conditions_never_grant(condition: str) -> None:
    assert not condition_readable(condition)
    assert not condition_allows(condition, action=REPOSITORY_CONTENT_READ, resource_attributes=repo("a"))
    conditioned = assignment(REPO_READER, condition=condition)
    verdict = evaluate_assignment(conditioned, ROLES, REPOSITORY_CONTENT_READ, REGISTRY, data=True,
                                  resource_attributes=repo("a"))
    if condition:
        assert not verdict.grants and verdict.reason.endswith("its condition could not be read, so it counts as not "
                                                              "granting")


def test_a_condition_does_not_matter_when_the_role_does_not_grant() -> None:
    verdict = evaluate_assignment(assignment(ACR_PULL, condition="garbage"), ROLES, REPOSITORY_CONTENT_READ,
                                  REGISTRY, data=True)
    assert not verdict.grants
    assert verdict.reason == f"role AcrPull has no dataActions entry matching {REPOSITORY_CONTENT_READ}"


# --- what the deployer may do (the gate's trust rules) -------------------------------------------------

GROUP = "9e1d2c3b-0000-4000-8000-0000000000f0"
CONTRIBUTOR = RoleDefinition("/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
                             "Contributor", actions=("*",), not_actions=("Microsoft.Authorization/*/Write",))
DEPLOYER_ROLES = {**ROLES, CONTRIBUTOR.guid: CONTRIBUTOR}


def registry(*, abac: bool = False) -> Registry:
    return Registry(REGISTRY, "myacr", "myacr.azurecr.io", "Premium", "Enabled", "Allow", "AzureServices",
                    "AbacRepositoryPermissions" if abac else "LegacyRegistryPermissions")


def test_the_deployer_can_pull_through_a_role_at_the_registry_or_above_its_groups_included() -> None:
    # assignedTo lists a group's assignment with the group as principal: it counts for the deployer
    through_group = RoleAssignment(f"{RG}/providers/Microsoft.Authorization/roleAssignments/g1", RG, ACR_PULL.id,
                                   GROUP)
    right = pull_right(PRINCIPAL, [through_group], DEPLOYER_ROLES, registry(), ["team/app"])
    assert right.holds and through_group.id in right.reason
    assert right.as_evidence()["operation"] == PULL_ACTION and "lacks" not in right.as_evidence()
    assert pull_right(PRINCIPAL, [assignment(CONTRIBUTOR, scope=SUB)], DEPLOYER_ROLES, registry(), []).holds


@pytest.mark.parametrize("assignments", [
    [],
    [assignment(NO_PULL)],  # notActions takes pull away
    [assignment(ACR_PULL, scope=f"{SUB}/resourceGroups/rg-other")],  # a sibling scope
    [RoleAssignment("a", REGISTRY, "/providers/Microsoft.Authorization/roleDefinitions/unknown", PRINCIPAL)],
], ids=["none", "not-actions", "elsewhere", "unreadable-role"])
def test_the_deployer_cannot_pull_and_the_evidence_says_what_it_lacks(assignments: list[RoleAssignment]) -> None:
    right = pull_right(PRINCIPAL, assignments, DEPLOYER_ROLES, registry(), ["team/app"])
    assert not right.holds
    evidence = right.as_evidence()
    assert evidence["lacks"] == PULL_ACTION and evidence["principalId"] == PRINCIPAL and evidence["scope"] == REGISTRY
    assert len(evidence["assignmentsConsidered"]) == len(assignments)


def test_in_abac_mode_only_a_repository_role_covering_every_repository_lets_the_deployer_pull() -> None:
    reg = registry(abac=True)
    assert not pull_right(PRINCIPAL, [assignment(CONTRIBUTOR, scope=SUB)], DEPLOYER_ROLES, reg, ["team/app"]).holds
    assert not pull_right(PRINCIPAL, [assignment(ACR_PULL)], DEPLOYER_ROLES, reg, ["team/app"]).holds
    assert pull_right(PRINCIPAL, [assignment(REPO_READER)], DEPLOYER_ROLES, reg, ["team/app", "team/db"]).holds
    conditioned = [assignment(REPO_READER, condition=REPO_CONDITION)]
    assert pull_right(PRINCIPAL, conditioned, DEPLOYER_ROLES, reg, ["team/app"]).holds
    requested = [assignment(REPO_READER, condition=REQUEST_CONDITION)]
    assert pull_right(PRINCIPAL, requested, DEPLOYER_ROLES, reg, ["team/app"]).holds
    assert pull_right(PRINCIPAL, requested, DEPLOYER_ROLES, reg, ["team/db"]).missing == ("team/db",)
    partly = pull_right(PRINCIPAL, conditioned, DEPLOYER_ROLES, reg, ["team/app", "team/db"])
    assert not partly.holds and partly.missing == ("team/db",)
    assert partly.as_evidence()["repositories"] == ["team/db"]
    assert partly.as_evidence()["lacks"] == REPOSITORY_CONTENT_READ
    assert not pull_right(PRINCIPAL, [assignment(REPO_READER)], DEPLOYER_ROLES, reg, []).holds  # nothing to cover


@pytest.mark.parametrize(("role", "scope", "holds"), [
    (CONTRIBUTOR, SUB, True),
    (CONTRIBUTOR, REGISTRY, True),
    (CONTRIBUTOR, f"{SUB}/resourceGroups/rg-other", False),
    (ACR_PULL, REGISTRY, False),
    (READER, SUB, False),
])
def test_the_deployer_may_write_the_registry_only_with_registries_write(role: RoleDefinition, scope: str,
                                                                       holds: bool) -> None:
    right = registry_write_right(PRINCIPAL, [assignment(role, scope=scope)], DEPLOYER_ROLES, registry())
    assert right.holds == holds and right.operation == REGISTRY_WRITE


# --- ACR's wildcard rule, excluding conditions, propagation -------------------------------------------------

WILDCARD = RoleDefinition(f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/22222222-0000-0000-0000-00000000bb",
                          "Registry reads", actions=("Microsoft.ContainerRegistry/*/read",), role_type="CustomRole")


def test_a_custom_roles_wildcard_grants_acr_pull_only_where_custom_wildcards_are_honoured() -> None:
    assert role_grant_reason(WILDCARD, PULL_ACTION)[0]  # ARM's own reading
    grants, why = role_grant_reason(WILDCARD, PULL_ACTION, custom_wildcards=False)
    assert not grants and "Azure Resource Manager private link" in why
    assert role_grant_reason(READER, PULL_ACTION, custom_wildcards=False)[0]  # built-in: as Azure defines it
    explicit = replace(WILDCARD, actions=("Microsoft.ContainerRegistry/*/read", PULL_ACTION))
    assert role_grant_reason(explicit, PULL_ACTION, custom_wildcards=False)[0]
    roles = {**ROLES, WILDCARD.guid: WILDCARD}
    assert not pull_right(PRINCIPAL, [assignment(WILDCARD)], roles, registry(), []).holds
    assert pull_right(PRINCIPAL, [assignment(WILDCARD)], roles, registry(), [], custom_wildcards=True).holds
    # the registry write check is ARM's, which honours wildcards everywhere
    writer = RoleDefinition(WILDCARD.id, "Registry writes", actions=("Microsoft.ContainerRegistry/*",),
                            role_type="CustomRole")
    assert registry_write_right(PRINCIPAL, [assignment(writer)], {writer.guid: writer}, registry()).holds


def test_repository_roles_excluding_reads_both_attribute_forms() -> None:
    request = REPO_CONDITION.replace("@Resource", "@Request")
    for condition in (REPO_CONDITION, request):
        held = assignment(REPO_READER, condition=condition)
        assert repository_roles_excluding([held], ROLES, REGISTRY, "team/db") == [held]
        assert repository_roles_excluding([held], ROLES, REGISTRY, "team/app") == []
    assert repository_roles_excluding([assignment(REPO_READER)], ROLES, REGISTRY, "team/db") == []  # unconditioned
    assert repository_roles_excluding([assignment(REPO_READER, condition="garbage")], ROLES, REGISTRY, "x") == []
    assert repository_roles_excluding([assignment(ACR_PULL, condition=REPO_CONDITION)], ROLES, REGISTRY, "x") == []


def test_an_assignment_is_propagating_only_while_younger_than_the_window() -> None:
    now = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    young = replace(assignment(ACR_PULL), created_on=now - timedelta(minutes=3))
    assert age_seconds(young, now) == 180
    assert still_propagating(young, now, 10) and not still_propagating(young, now, 3)
    assert not still_propagating(assignment(ACR_PULL), now, 10)  # createdOn unknown
    assert not still_propagating(young, None, 10)
    naive = replace(young, created_on=datetime(2026, 12, 1, 17, 59))  # read as UTC
    assert age_seconds(naive, now) == 60
