"""Azure RBAC in the sandbox: the Microsoft.Authorization surface through the real SDK, and rbac.py's rules."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization.models import Permission, RoleAssignmentCreateParameters, RoleDefinition

from sandbox import USER_PRINCIPAL, rbac
from sandbox.surfaces.authorization import principal_type_of

from . import sdk
from .reference import SAMPLES
from .worlds import (
    IDENTITY_PRINCIPAL,
    REGISTRY_ID,
    REMEDIATOR,
    RG,
    RG_ID,
    SUB,
    SUB2,
    TENANT,
    assignment,
    group_body,
    identity,
    registry,
    world,
)

SUB_ID = f"/subscriptions/{SUB}"
OTHER_RG_ID = f"{SUB_ID}/resourceGroups/other-rg"
OTHER_PRINCIPAL = "cccccccc-0000-0000-0000-000000000001"
OWNER_NAME = "0a0a0a0a-0000-4000-8000-000000000001"

# The delegation condition of AZURE_FACTS.md §4, laid out as the docs and the portal write it.
ALLOWED = f"{{{rbac.ACR_PULL}, {rbac.REPOSITORY_READER}}}"
DELEGATION = f"""(
 (
  !(ActionMatches{{'Microsoft.Authorization/roleAssignments/write'}})
 )
 OR
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {ALLOWED}
 )
)
AND
(
 (
  !(ActionMatches{{'Microsoft.Authorization/roleAssignments/delete'}})
 )
 OR
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {ALLOWED}
 )
)"""


def role_id(guid: str, sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def params(guid: str, principal: str = IDENTITY_PRINCIPAL, principal_type: str | None = "ServicePrincipal",
           **extra: Any) -> RoleAssignmentCreateParameters:
    return RoleAssignmentCreateParameters(role_definition_id=role_id(guid), principal_id=principal,
                                          principal_type=principal_type, **extra)


def raw(pipeline_response: Any, _deserialized: Any, _headers: Any) -> tuple[int, dict[str, Any]]:
    """``cls=`` hook: the HTTP status and JSON body the SDK received."""
    return pipeline_response.http_response.status_code, json.loads(pipeline_response.http_response.text())


def names(items: Any) -> set[str]:
    return {a.name for a in items}


def error_of(call: Any) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as info:
        call()
    return info.value


# --- role assignments: create, read, delete ---------------------------------------------------

def test_create_returns_201_then_200_for_identical_repeat_with_arm_shape(make_sandbox):
    sb = make_sandbox(world())
    client = sdk.authz(sb)
    name = "3f0c0e8e-0000-4000-8000-000000000001"
    status, body = client.role_assignments.create(REGISTRY_ID, name, params(rbac.ACR_PULL), cls=raw)
    assert status == 201
    sample = json.loads((SAMPLES / "authorization_roleAssignments_createForResource_2022-04-01.json").read_text())
    assert set(sample["responses"]["201"]["body"]) == set(body)
    documented = {"scope", "roleDefinitionId", "principalId", "principalType", "condition", "conditionVersion",
                  "createdOn", "updatedOn", "createdBy", "updatedBy", "delegatedManagedIdentityResourceId",
                  "description"}
    assert set(body["properties"]) == documented
    assert body["id"] == f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/{name}"
    assert body["properties"]["scope"] == REGISTRY_ID
    assert body["properties"]["createdBy"] == USER_PRINCIPAL

    again, body2 = client.role_assignments.create(REGISTRY_ID, name, params(rbac.ACR_PULL), cls=raw)
    assert again == 200 and body2["properties"]["createdOn"] == body["properties"]["createdOn"]

    got = client.role_assignments.get(REGISTRY_ID, name)
    assert (got.principal_id, got.role_definition_id, got.scope) == (IDENTITY_PRINCIPAL, role_id(rbac.ACR_PULL),
                                                                     REGISTRY_ID)
    assert client.role_assignments.get_by_id(body["id"]).name == name


def test_delete_returns_the_assignment_then_nothing(make_sandbox):
    sb = make_sandbox(world(resources=[registry(), identity(),
                                       assignment(REGISTRY_ID, rbac.ACR_PULL, name=OWNER_NAME)]))
    client = sdk.authz(sb)
    assert client.role_assignments.delete(REGISTRY_ID, OWNER_NAME).name == OWNER_NAME
    assert client.role_assignments.delete(REGISTRY_ID, OWNER_NAME) is None  # 204
    err = error_of(lambda: client.role_assignments.get(REGISTRY_ID, OWNER_NAME))
    assert err.status_code == 404 and err.error.code == "RoleAssignmentNotFound"
    assert not sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)


def test_writes_are_recorded_in_the_activity_log(make_sandbox):
    sb = make_sandbox(world())
    client = sdk.authz(sb)
    client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000002", params(rbac.ACR_PULL))
    error_of(lambda: client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000003",
                                                    params(rbac.ACR_PULL)))
    client.role_assignments.delete(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000002")
    ends = [(r["operationName"]["value"], r["status"]["value"], r["properties"].get("statusCode"))
            for r in sb.world.visible_activity(SUB) if r["eventName"]["value"] == "EndRequest"]
    assert ends == [("Microsoft.Authorization/roleAssignments/write", "Succeeded", "Created"),
                    ("Microsoft.Authorization/roleAssignments/write", "Failed", "Conflict"),
                    ("Microsoft.Authorization/roleAssignments/delete", "Succeeded", "OK")]


# --- role assignments: the errors Azure gives ---------------------------------------------------

def test_duplicate_under_another_name_is_409_role_assignment_exists(make_sandbox):
    existing = "5d3f4b2a-1c9e-4e7f-8a6b-0c1d2e3f4a5b"
    sb = make_sandbox(world(resources=[registry(), identity(), assignment(REGISTRY_ID, rbac.ACR_PULL, name=existing)]))
    err = error_of(lambda: sdk.authz(sb).role_assignments.create(
        REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000004", params(rbac.ACR_PULL)))
    assert err.status_code == 409 and err.error.code == "RoleAssignmentExists"
    m = re.fullmatch(r"The role assignment already exists\. The ID of the existing role assignment is ([0-9a-f]{32})\.",
                     err.error.message)
    assert m and m.group(1) == existing.replace("-", "")


def test_another_condition_does_not_make_a_second_assignment_of_the_same_tuple(make_sandbox):
    """conditions-faq.md: one assignment per principal, role and scope, with or without a condition."""
    only_app = ("((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR "
                "(@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase '%s'))")
    held = assignment(REGISTRY_ID, rbac.REPOSITORY_READER, condition=only_app % "app")
    sb = make_sandbox(world(resources=[registry(), identity(), held]))
    err = error_of(lambda: sdk.authz(sb).role_assignments.create(
        REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000009",
        params(rbac.REPOSITORY_READER, condition=only_app % "db", condition_version="2.0")))
    assert err.status_code == 409 and err.error.code == "RoleAssignmentExists"
    assert sb.world.get(held["id"])["properties"]["condition"] == only_app % "app"  # untouched
    # another scope is another tuple
    sdk.authz(sb).role_assignments.create(RG_ID, "3f0c0e8e-0000-4000-8000-00000000000a",
                                          params(rbac.REPOSITORY_READER, condition=only_app % "db",
                                                 condition_version="2.0"))


def test_a_scenario_assignment_created_seconds_ago_is_still_propagating(make_sandbox):
    young = {**assignment(REGISTRY_ID, rbac.ACR_PULL), "sandbox": {"createdSecondsAgo": 30}}
    old = assignment(RG_ID, rbac.ACR_PULL, principal=OTHER_PRINCIPAL)
    someone = "77777777-0000-0000-0000-000000000007"
    their = assignment(RG_ID, rbac.READER, principal=someone)
    their = {**their, "properties": {**their["properties"], "principalType": "User"},
             "sandbox": {"createdSecondsAgo": 5}}
    sb = make_sandbox(world(resources=[registry(), identity(), young, old, their],
                            behaviour={"rbacPropagationSeconds": 120}))
    assert not sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)
    assert sb.world.allows(OTHER_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)
    (listed,) = [a for a in sdk.authz(sb).role_assignments.list_for_scope(REGISTRY_ID)
                 if a.principal_id == IDENTITY_PRINCIPAL]
    age = (datetime.now(UTC) - listed.created_on).total_seconds()
    assert 25 <= age <= 60  # ARM's createdOn tells how young it is
    assert "sandbox" not in sb.world.get(young["id"])  # sandbox-only: ARM never shows it
    assert principal_type_of(sb.world, someone) == "User"  # known from the scenario's assignment, young or not
    sb.world.advance(91)
    assert sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)


def test_reusing_a_name_for_another_principal_is_409_update_not_permitted(make_sandbox):
    sb = make_sandbox(world(resources=[registry(), identity(),
                                       assignment(REGISTRY_ID, rbac.ACR_PULL, name=OWNER_NAME)]))
    client = sdk.authz(sb)
    err = error_of(lambda: client.role_assignments.create(REGISTRY_ID, OWNER_NAME,
                                                          params(rbac.ACR_PULL, principal=REMEDIATOR)))
    assert err.status_code == 409 and err.error.code == "RoleAssignmentUpdateNotPermitted"
    err = error_of(lambda: client.role_assignments.create(RG_ID, OWNER_NAME, params(rbac.ACR_PULL)))
    assert err.error.code == "RoleAssignmentUpdateNotPermitted"  # names are unique across scopes
    err = error_of(lambda: client.role_assignments.create(REGISTRY_ID, OWNER_NAME, params(rbac.ACR_PUSH)))
    assert err.error.code == "RoleAssignmentUpdateNotPermitted"


def test_unknown_principal_without_principal_type_is_principal_not_found(make_sandbox):
    sb = make_sandbox(world())
    client = sdk.authz(sb)
    fresh = "dddddddd-0000-0000-0000-000000000001"
    err = error_of(lambda: client.role_assignments.create(
        REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000005", params(rbac.ACR_PULL, principal=fresh,
                                                                     principal_type=None)))
    assert err.status_code == 400 and err.error.code == "PrincipalNotFound"
    assert f"does not exist in the directory {TENANT}" in err.error.message
    assert "set the role assignment principalType property" in err.error.message
    # the documented workaround: name the principal type
    made = client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000005",
                                          params(rbac.ACR_PULL, principal=fresh))
    assert made.principal_type == "ServicePrincipal"
    # principals the directory knows need no type: the identity, and the deploying user
    known = client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000006",
                                           params(rbac.ACR_PULL, principal_type=None))
    assert known.principal_type == "ServicePrincipal"
    user = client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000007",
                                          params(rbac.READER, principal=USER_PRINCIPAL, principal_type=None))
    assert user.principal_type == "User"


def test_unknown_role_and_non_guid_name_are_400(make_sandbox):
    sb = make_sandbox(world())
    client = sdk.authz(sb)
    err = error_of(lambda: client.role_assignments.create(
        REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000008", params("99999999-9999-4999-8999-999999999999")))
    assert err.status_code == 400 and err.error.code == "RoleDefinitionDoesNotExist"
    assert "99999999-9999-4999-8999-999999999999" in err.error.message
    err = error_of(lambda: client.role_assignments.create(REGISTRY_ID, "acrpull-for-myacrid", params(rbac.ACR_PULL)))
    assert err.status_code == 400 and err.error.code == "InvalidRoleAssignmentId"


def test_assignment_on_a_missing_group_is_404(make_sandbox):
    sb = make_sandbox(world())
    err = error_of(lambda: sdk.authz(sb).role_assignments.create(
        f"{SUB_ID}/resourceGroups/nope", "3f0c0e8e-0000-4000-8000-000000000009", params(rbac.ACR_PULL)))
    assert err.status_code == 404 and err.error.code == "ResourceGroupNotFound"


# --- listing ------------------------------------------------------------------------------------

def _listing_world() -> dict[str, Any]:
    return world(resources=[
        registry(), identity(),
        assignment(SUB_ID, rbac.READER, name="a0000000-0000-4000-8000-000000000001"),
        assignment(RG_ID, rbac.ACR_PULL, name="a0000000-0000-4000-8000-000000000002"),
        assignment(REGISTRY_ID, rbac.ACR_PUSH, principal=OTHER_PRINCIPAL, name="a0000000-0000-4000-8000-000000000003"),
        assignment(OTHER_RG_ID, rbac.ACR_PULL, name="a0000000-0000-4000-8000-000000000004"),
    ])


def test_list_for_scope_includes_inherited_and_below_unless_at_scope(make_sandbox):
    sb = make_sandbox(_listing_world())
    ra = sdk.authz(sb).role_assignments
    sub_a, rg_a, reg_a, other_a = (f"a0000000-0000-4000-8000-00000000000{i}" for i in range(1, 5))
    # from the registry: its own, plus those at the group and subscription above it
    assert names(ra.list_for_scope(REGISTRY_ID)) == {sub_a, rg_a, reg_a}
    assert names(ra.list_for_scope(REGISTRY_ID, filter="atScope()")) == {sub_a, rg_a, reg_a}
    # from the group: above and below, but not the sibling group's
    assert names(ra.list_for_scope(RG_ID)) == {sub_a, rg_a, reg_a}
    assert names(ra.list_for_scope(RG_ID, filter="atScope()")) == {sub_a, rg_a}
    assert names(ra.list_for_resource_group(RG)) == {sub_a, rg_a, reg_a}
    assert names(ra.list_for_resource(RG, "Microsoft.ContainerRegistry", "registries", "myacr")) == {sub_a, rg_a, reg_a}
    assert names(ra.list_for_subscription()) == {sub_a, rg_a, reg_a, other_a}
    assert names(ra.list_for_subscription(filter="atScope()")) == {sub_a}


def test_list_filters_by_principal(make_sandbox):
    sb = make_sandbox(_listing_world())
    ra = sdk.authz(sb).role_assignments
    mine = {f"a0000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 4)}
    assert names(ra.list_for_scope(SUB_ID, filter=f"principalId eq '{IDENTITY_PRINCIPAL}'")) == mine
    assert names(ra.list_for_scope(SUB_ID, filter=f"assignedTo('{IDENTITY_PRINCIPAL}')")) == mine
    assert names(ra.list_for_scope(REGISTRY_ID, filter=f"assignedTo('{OTHER_PRINCIPAL}')")) == {
        "a0000000-0000-4000-8000-000000000003"}
    assert names(ra.list_for_scope(RG_ID, filter=f"atScope() and assignedTo('{IDENTITY_PRINCIPAL}')")) == {
        "a0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000002"}
    err = error_of(lambda: list(ra.list_for_scope(RG_ID, filter="roleName eq 'AcrPull'")))
    assert err.status_code == 400


# --- what roles grant -----------------------------------------------------------------------------

def test_inherited_assignment_grants_pull_on_the_registry(make_sandbox):
    sb = make_sandbox(world(resources=[registry(), identity(), assignment(RG_ID, rbac.ACR_PULL),
                                       assignment(SUB_ID, rbac.ACR_PUSH, principal=OTHER_PRINCIPAL),
                                       assignment(OTHER_RG_ID, rbac.ACR_PULL, principal=REMEDIATOR)]))
    assert sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)  # from the group
    assert sb.world.allows(OTHER_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)  # from the subscription
    assert not sb.world.allows(REMEDIATOR, rbac.PULL_ACTION, REGISTRY_ID)  # a sibling group grants nothing here
    # a scope that only shares a prefix string is not a child
    assert not sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, f"{RG_ID}2/providers/X/y/z")


def test_reader_read_wildcard_grants_pull_but_not_push(make_sandbox):
    sb = make_sandbox(world(resources=[registry(), identity(), assignment(REGISTRY_ID, rbac.READER)]))
    assert sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)
    assert not sb.world.allows(IDENTITY_PRINCIPAL, "Microsoft.ContainerRegistry/registries/push/write", REGISTRY_ID)
    assert not sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID, data=True)  # actions, not dataActions


def test_custom_role_wildcards_and_not_actions(make_sandbox):
    all_but_pull = {"id": role_id("c0000000-0000-4000-8000-000000000001"), "properties": {
        "roleName": "Registry operator without pull", "assignableScopes": [SUB_ID],
        "permissions": [{"actions": ["Microsoft.ContainerRegistry/registries/*"],
                         "notActions": ["Microsoft.ContainerRegistry/registries/pull/read"]}]}}
    any_read = {"id": role_id("c0000000-0000-4000-8000-000000000002"), "properties": {
        "roleName": "Registry reader", "assignableScopes": [SUB_ID],
        "permissions": [{"actions": ["Microsoft.ContainerRegistry/*/read"]}]}}
    sb = make_sandbox(world(
        resources=[registry(), identity(), assignment(REGISTRY_ID, "c0000000-0000-4000-8000-000000000001"),
                   assignment(REGISTRY_ID, "c0000000-0000-4000-8000-000000000002", principal=OTHER_PRINCIPAL)],
        roleDefinitions=[all_but_pull, any_read]))
    assert sb.world.allows(IDENTITY_PRINCIPAL, "Microsoft.ContainerRegistry/registries/write", REGISTRY_ID)
    assert not sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)  # notActions wins
    # ACR's pull ignores a custom role's wildcard without ARM private link ...
    assert not sb.world.allows(OTHER_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)
    assert sb.world.allows(OTHER_PRINCIPAL, "Microsoft.ContainerRegistry/registries/read", REGISTRY_ID)  # ARM's: does
    assert not sb.world.allows(OTHER_PRINCIPAL, "Microsoft.ContainerRegistry/registries/write", REGISTRY_ID)
    customs = list(sdk.authz(sb).role_definitions.list(SUB_ID, filter="type eq 'CustomRole'"))
    assert {r.role_name for r in customs} == {"Registry operator without pull", "Registry reader"}
    assert all(r.id.startswith(f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions/") for r in customs)
    # ... and honours it in a tenant with ARM private link, where */read spans path segments
    linked = make_sandbox(world(
        resources=[registry(), identity(),
                   assignment(REGISTRY_ID, "c0000000-0000-4000-8000-000000000002", principal=OTHER_PRINCIPAL)],
        roleDefinitions=[any_read],
        behaviour={"rbacPropagationSeconds": 0, "tenantHasArmPrivateLink": True}))
    assert linked.world.allows(OTHER_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)


def test_built_in_wildcards_count_for_acrs_pull_without_arm_private_link(make_sandbox):
    sb = make_sandbox(world(resources=[registry(), identity(), assignment(RG_ID, rbac.READER)]))
    assert sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)  # Reader's */read, as Azure defines it


def test_the_acr_repository_roles_are_azures_own_ids_and_data_actions():
    """MicrosoftDocs azure-docs articles/role-based-access-control/built-in-roles/containers.md (2025-06-30)."""
    roles = {r["properties"]["roleName"]: r for r in rbac.builtin_role_definitions()}
    expected = {
        "Container Registry Repository Reader": ("b93aa761-3e63-49ed-ac28-beffa264f7ac", ["metadata/read",
                                                                                         "content/read"]),
        "Container Registry Repository Writer": ("2a1e307c-b015-4ebd-883e-5b7698a07328", [
            "metadata/read", "content/read", "metadata/write", "content/write"]),
        "Container Registry Repository Contributor": ("2efddaa5-3f1f-4df3-97df-af3f13818f4c", [
            "metadata/read", "content/read", "metadata/write", "content/write", "metadata/delete", "content/delete"]),
    }
    for name, (guid, data_actions) in expected.items():
        (permission,) = roles[name]["properties"]["permissions"]
        assert roles[name]["name"] == guid
        assert permission["actions"] == [] and permission["notActions"] == []
        assert permission["dataActions"] == [f"Microsoft.ContainerRegistry/registries/repositories/{a}"
                                             for a in data_actions]
    (lister,) = roles["Container Registry Repository Catalog Lister"]["properties"]["permissions"]
    assert roles["Container Registry Repository Catalog Lister"]["name"] == "bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7"
    assert lister["dataActions"] == ["Microsoft.ContainerRegistry/registries/catalog/read"] and lister["actions"] == []


def test_contributor_cannot_write_role_assignments(make_sandbox):
    contributor = assignment(RG_ID, rbac.CONTRIBUTOR, principal=REMEDIATOR)
    sb = make_sandbox(world(resources=[registry(), identity(), contributor], remediator=True))
    assert sb.world.allows(REMEDIATOR, "Microsoft.ContainerRegistry/registries/write", REGISTRY_ID)
    assert not sb.world.allows(REMEDIATOR, "Microsoft.Authorization/roleAssignments/write", REGISTRY_ID)
    err = error_of(lambda: sdk.authz(sb, REMEDIATOR).role_assignments.create(
        REGISTRY_ID, "3f0c0e8e-0000-4000-8000-00000000000a", params(rbac.ACR_PULL)))
    assert err.status_code == 403 and err.error.code == "AuthorizationFailed"
    assert "Microsoft.Authorization/roleAssignments/write" in err.error.message
    assert "ABAC" not in err.error.message
    assert len(sb.world.role_assignments()) == 1  # nothing was written


def test_new_assignment_takes_effect_after_propagation_delay(make_sandbox):
    sb = make_sandbox(world(behaviour={"rbacPropagationSeconds": 120, "faults": []}))
    client = sdk.authz(sb)
    client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-00000000000b", params(rbac.ACR_PULL))
    assert names(client.role_assignments.list_for_scope(REGISTRY_ID)) == {"3f0c0e8e-0000-4000-8000-00000000000b"}
    assert not sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)
    sb.world.advance(60)
    assert not sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)
    sb.world.advance(61)
    assert sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)


# --- conditions: a remediator allowed to assign only AcrPull and Repository Reader -----------------

def _delegated_world(**extra: Any) -> dict[str, Any]:
    admin = assignment(REGISTRY_ID, rbac.RBAC_ADMINISTRATOR, principal=REMEDIATOR, condition=DELEGATION,
                       name="b0000000-0000-4000-8000-000000000001")
    owner = assignment(REGISTRY_ID, rbac.OWNER, principal=OTHER_PRINCIPAL, name=OWNER_NAME)
    return world(resources=[registry(), identity(), admin, owner], remediator=True, **extra)


def test_delegation_condition_allows_acrpull_and_repository_reader_only(make_sandbox):
    sb = make_sandbox(_delegated_world())
    client = sdk.authz(sb, REMEDIATOR)
    pull = client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-00000000000c", params(rbac.ACR_PULL))
    assert pull.created_by == REMEDIATOR
    client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-00000000000d",
                                   params(rbac.REPOSITORY_READER))
    err = error_of(lambda: client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-00000000000e",
                                                          params(rbac.OWNER)))
    assert err.status_code == 403 and err.error.code == "AuthorizationFailed"
    assert "ABAC condition not fulfilled" in err.error.message
    assert "Microsoft.Authorization/roleAssignments/write" in err.error.message
    # the role holds at the registry only: not at the group above it
    err = error_of(lambda: client.role_assignments.create(RG_ID, "3f0c0e8e-0000-4000-8000-00000000000f",
                                                          params(rbac.ACR_PULL)))
    assert err.status_code == 403 and "ABAC" not in err.error.message
    # it may read what it manages (Role Based Access Control Administrator has */read)
    assert OWNER_NAME in names(client.role_assignments.list_for_scope(REGISTRY_ID))


def test_delegation_condition_limits_deletes_by_the_existing_assignment(make_sandbox):
    sb = make_sandbox(_delegated_world())
    client = sdk.authz(sb, REMEDIATOR)
    client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000010", params(rbac.ACR_PULL))
    err = error_of(lambda: client.role_assignments.delete(REGISTRY_ID, OWNER_NAME))
    assert err.status_code == 403 and "roleAssignments/delete" in err.error.message
    assert sb.world.get(f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/{OWNER_NAME}")
    assert client.role_assignments.delete(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000010").role_definition_id \
        == role_id(rbac.ACR_PULL)


def test_condition_forms_evaluate_as_azure_defines_them():
    write = "Microsoft.Authorization/roleAssignments/write"
    delete = "Microsoft.Authorization/roleAssignments/delete"
    attr = "Microsoft.Authorization/roleAssignments:RoleDefinitionId"

    def allows(cond: str, action: str, request: dict[str, Any] | None = None,
               resource: dict[str, Any] | None = None) -> bool:
        return rbac.condition_allows(cond, rbac.ConditionInput(action, request or {}, resource or {}))

    assert allows(DELEGATION, write, {attr: rbac.ACR_PULL})
    assert allows(DELEGATION, write, {attr: role_id(rbac.REPOSITORY_READER)})  # a full id names the same GUID
    assert not allows(DELEGATION, write, {attr: rbac.OWNER})
    assert allows(DELEGATION, delete, resource={attr: rbac.ACR_PULL})
    assert not allows(DELEGATION, delete, resource={attr: rbac.OWNER})
    assert allows(DELEGATION, "Microsoft.ContainerRegistry/registries/read")  # other actions are not constrained
    # "any role except these": a negated operator is negated per value, before the quantifier
    except_owner = f"@Request[{attr}] ForAnyOfAllValues:GuidNotEquals {{{rbac.OWNER}, {rbac.RBAC_ADMINISTRATOR}}}"
    assert allows(except_owner, write, {attr: rbac.ACR_PULL})
    assert not allows(except_owner, write, {attr: rbac.OWNER})
    principal_type = ("@Request[Microsoft.Authorization/roleAssignments:PrincipalType] "
                      "ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}")
    assert allows(principal_type, write, {"Microsoft.Authorization/roleAssignments:PrincipalType": "servicePrincipal"})
    assert not allows(principal_type, write, {"Microsoft.Authorization/roleAssignments:PrincipalType": "User"})
    assert not allows("@Request[x] Frobnicates {1}", write, {"x": "1"})  # unreadable conditions deny


# --- role definitions ----------------------------------------------------------------------------

def test_builtin_role_definitions_match_the_published_ones(make_sandbox):
    sb = make_sandbox(world())
    client = sdk.authz(sb)
    for sample_file in ("rbac_builtin_roleDefinition_AcrPull.json", "rbac_builtin_roleDefinition_AcrPush.json"):
        sample = json.loads((SAMPLES / sample_file).read_text())
        got = client.role_definitions.get_by_id(sample["id"])
        assert got.id == sample["id"]  # asked at the tenant root: tenant-level id
        assert (got.role_name, got.description, got.role_type, got.assignable_scopes) == (
            sample["roleName"], sample["description"], sample["roleType"], sample["assignableScopes"])
        assert [p.as_dict() for p in got.permissions] == [
            {"actions": p["actions"], "not_actions": p["notActions"], "data_actions": p["dataActions"],
             "not_data_actions": p["notDataActions"]} for p in sample["permissions"]]
        at_sub = client.role_definitions.get(RG_ID, sample["name"])
        assert at_sub.id == f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions/{sample['name']}"


def test_role_definitions_list_by_name_and_type(make_sandbox):
    custom = {"id": role_id("c0000000-0000-4000-8000-000000000003"), "properties": {
        "roleName": "Puller", "assignableScopes": [SUB_ID], "permissions": [{"actions": [rbac.PULL_ACTION]}]}}
    sb = make_sandbox(world(roleDefinitions=[custom]))
    rd = sdk.authz(sb).role_definitions
    (reader,) = rd.list(SUB_ID, filter="roleName eq 'Container Registry Repository Reader'")
    assert reader.name == rbac.REPOSITORY_READER
    assert reader.id == f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions/{rbac.REPOSITORY_READER}"
    builtins = {r.role_name for r in rd.list(SUB_ID, filter="type eq 'BuiltInRole'")}
    assert {"AcrPull", "Owner", "Role Based Access Control Administrator"} <= builtins and "Puller" not in builtins
    assert [r.role_name for r in rd.list(SUB_ID, filter="roleName eq 'Puller'")] == ["Puller"]
    # a custom role is not offered outside its assignable scopes
    assert not list(rd.list(f"/subscriptions/{SUB2}", filter="roleName eq 'Puller'"))
    err = error_of(lambda: rd.get(SUB_ID, "99999999-9999-4999-8999-999999999999"))
    assert err.status_code == 404 and err.error.code == "RoleDefinitionDoesNotExist"


def test_custom_role_created_through_the_sdk_can_be_assigned(make_sandbox):
    sb = make_sandbox(world())
    client = sdk.authz(sb)
    guid = "c0000000-0000-4000-8000-000000000004"
    made = client.role_definitions.create_or_update(SUB_ID, guid, RoleDefinition(
        role_name="Pull only", description="pulls", role_type="CustomRole", assignable_scopes=[SUB_ID],
        permissions=[Permission(actions=["Microsoft.ContainerRegistry/registries/pull/read"])]))
    assert made.id == f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    client.role_assignments.create(REGISTRY_ID, "3f0c0e8e-0000-4000-8000-000000000011", params(guid))
    assert sb.world.allows(IDENTITY_PRINCIPAL, rbac.PULL_ACTION, REGISTRY_ID)
    err = error_of(lambda: client.role_definitions.create_or_update(SUB_ID, "c0000000-0000-4000-8000-000000000005",
                                                                    RoleDefinition(role_name="AcrPull",
                                                                                   permissions=[Permission()])))
    assert err.status_code == 409 and err.error.code == "RoleDefinitionWithSameNameExists"


# --- the deployer and Entra groups --------------------------------------------------------------------

TEAM = "99999999-0000-0000-0000-000000000001"
PLATFORM = "99999999-0000-0000-0000-000000000002"
"""Entra groups: ``TEAM`` holds the user; ``PLATFORM`` holds ``TEAM``."""
GROUPS = {TEAM: [USER_PRINCIPAL], PLATFORM: [TEAM]}


def _deployer_world(*resources: dict[str, Any], groups: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return world(resources=[registry(), identity(), *resources], deployer={"principalId": USER_PRINCIPAL},
                 groups=groups or {})


def _create_group(sb: Any) -> Any:
    body = group_body()
    return sdk.aci(sb).container_groups.begin_create_or_update(RG, "app", body).result()


def test_the_deployer_may_do_only_what_its_role_assignments_allow(make_sandbox):
    err = error_of(lambda: _create_group(make_sandbox(_deployer_world())))
    assert err.status_code == 403 and err.error.code == "AuthorizationFailed"
    assert "Microsoft.ContainerInstance/containerGroups/write" in err.error.message
    allowed = make_sandbox(_deployer_world(assignment(RG_ID, rbac.CONTRIBUTOR, principal=USER_PRINCIPAL),
                                           assignment(REGISTRY_ID, rbac.ACR_PULL)))
    assert _create_group(allowed).provisioning_state in ("Pending", "Succeeded")
    # a scenario without a deployer lets the user do anything (ACI itself then refuses the pull), as one
    # without a remediator lets the app
    assert error_of(lambda: _create_group(make_sandbox(world()))).error.code == "InaccessibleImage"


def test_a_groups_assignment_counts_for_its_members_transitively(make_sandbox):
    on_platform = assignment(RG_ID, rbac.CONTRIBUTOR, principal=PLATFORM)
    sb = make_sandbox(_deployer_world(on_platform, assignment(REGISTRY_ID, rbac.ACR_PULL), groups=GROUPS))
    assert sb.world.allows(USER_PRINCIPAL, "Microsoft.ContainerInstance/containerGroups/write", RG_ID)
    assert _create_group(sb).name == "app"
    outsider = make_sandbox(_deployer_world(on_platform, groups={TEAM: [OTHER_PRINCIPAL], PLATFORM: [TEAM]}))
    assert error_of(lambda: _create_group(outsider)).error.code == "AuthorizationFailed"


def test_assigned_to_lists_the_assignments_of_the_principals_groups_principal_id_does_not(make_sandbox):
    own = assignment(RG_ID, rbac.READER, principal=USER_PRINCIPAL, name="b0000000-0000-4000-8000-000000000001")
    team = assignment(REGISTRY_ID, rbac.ACR_PULL, principal=TEAM, name="b0000000-0000-4000-8000-000000000002")
    platform = assignment(SUB_ID, rbac.READER, principal=PLATFORM, name="b0000000-0000-4000-8000-000000000003")
    unrelated = assignment(RG_ID, rbac.ACR_PUSH, principal=OTHER_PRINCIPAL, name="b0000000-0000-4000-8000-000000000004")
    sb = make_sandbox(world(resources=[registry(), identity(), own, team, platform, unrelated], groups=GROUPS))
    ra = sdk.authz(sb).role_assignments
    assert names(ra.list_for_scope(REGISTRY_ID, filter=f"assignedTo('{USER_PRINCIPAL}')")) == {
        own["name"], team["name"], platform["name"]}
    assert names(ra.list_for_scope(REGISTRY_ID, filter=f"principalId eq '{USER_PRINCIPAL}'")) == {own["name"]}
    assert names(ra.list_for_scope(RG_ID, filter=f"atScope() and assignedTo('{USER_PRINCIPAL}')")) == {
        own["name"], platform["name"]}


def test_a_role_assignment_to_a_scenario_group_is_made_as_a_group(make_sandbox):
    sb = make_sandbox(world(groups=GROUPS))
    made = sdk.authz(sb).role_assignments.create(
        REGISTRY_ID, "3f0c0e8e-0000-4000-8000-0000000000a1", params(rbac.ACR_PULL, principal=TEAM, principal_type=None))
    assert made.principal_type == "Group"
