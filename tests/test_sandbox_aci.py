"""The sandbox's Azure Container Instances surface, through the real azure-mgmt-containerinstance client."""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from sandbox import Sandbox, eventgrid, rbac
from sandbox.scenario import parse_scenario
from sandbox.surfaces import containerinstance, registry_data
from sandbox.tokens import make_token
from sandbox.world import World

from . import sdk
from .worlds import (
    GROUP_ID,
    IDENTITY_CLIENT,
    IDENTITY_ID,
    IDENTITY_PRINCIPAL,
    IMAGE,
    LOGIN_SERVER,
    REGISTRY_ID,
    REMEDIATOR,
    RG,
    RG_ID,
    SUB,
    TENANT,
    assignment,
    group_body,
    identity,
    registry,
    world,
)

NAME = "acrtestcontainergroup"
INACCESSIBLE = (f"The image '{IMAGE}' in container group '{NAME}' is not accessible. "
                "Please check the image and registry credential.")
SUB_SCOPE = f"/subscriptions/{SUB}"


def _sandbox(make_sandbox, *extra: dict[str, Any], registry_props: dict[str, Any] | None = None,
             **kw: Any) -> Sandbox:
    return make_sandbox(world(resources=[registry(**(registry_props or {})), identity(), *extra], **kw))


def _acr_pull(scope: str = REGISTRY_ID) -> dict[str, Any]:
    return assignment(scope, rbac.ACR_PULL)


def _create(sb: Sandbox, body: dict[str, Any] | None = None, name: str = NAME, **kw: Any):
    return sdk.aci(sb).container_groups.begin_create_or_update(RG, name, body or group_body(), **kw).result()


def _fails(sb: Sandbox, body: dict[str, Any] | None = None, name: str = NAME, **kw: Any) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as info:
        _create(sb, body, name, **kw)
    assert info.value.status_code == 400
    return info.value


def _assert_inaccessible(sb: Sandbox, body: dict[str, Any] | None = None, image: str = IMAGE) -> None:
    err = _fails(sb, body)
    assert err.error.code == "InaccessibleImage"
    assert err.error.message == (f"The image '{image}' in container group '{NAME}' is not accessible. "
                                 "Please check the image and registry credential.")


def _put_raw(sb: Sandbox, path: str, payload: str, api_version: str = "2023-05-01") -> tuple[int, dict[str, Any]]:
    ctx = ssl.create_default_context(cafile=sb.ca_bundle)
    req = urllib.request.Request(f"{sb.arm_endpoint}{path}?api-version={api_version}", data=payload.encode(),
                                 method="PUT", headers={"Authorization": f"Bearer {make_token('someone', TENANT)}",
                                                        "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


# --- a successful pull -----------------------------------------------------------------------


def test_create_returns_running_group_with_instance_view(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    group = _create(sb)
    assert group.provisioning_state == "Succeeded"
    assert group.id == GROUP_ID
    view = group.containers[0].instance_view
    assert view.current_state.state == "Running"
    assert view.restart_count == 0
    assert [e.name for e in view.events] == ["Pulling", "Pulled", "Created", "Started"]
    assert IMAGE in view.events[1].message
    assert all(e.first_timestamp is not None for e in view.events)
    assert group.instance_view.state == "Running"
    attached = {k.lower(): v for k, v in group.identity.user_assigned_identities.items()}
    assert attached[IDENTITY_ID.lower()].principal_id == IDENTITY_PRINCIPAL
    assert attached[IDENTITY_ID.lower()].client_id == IDENTITY_CLIENT
    assert group.image_registry_credentials[0].identity == IDENTITY_ID
    assert group.ip_address.ip


def test_put_answers_pending_then_succeeds_when_the_operation_completes(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull(), behaviour={"provisioningSeconds": 30})
    client = sdk.aci(sb)
    initial = client.container_groups.begin_create_or_update(RG, NAME, group_body(), polling=False).result()
    assert initial.provisioning_state == "Pending"
    assert client.container_groups.get(RG, NAME).provisioning_state == "Pending"
    last = [r for r in sb.world.request_log if r.method == "PUT"][-1]
    assert last.status == 201
    sb.world.advance(31)
    done = client.container_groups.get(RG, NAME)
    assert done.provisioning_state == "Succeeded"
    assert [e.name for e in done.containers[0].instance_view.events][-1] == "Started"


def test_update_answers_200_and_keeps_the_group(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    _create(sb)
    updated = _create(sb, group_body(image=f"{LOGIN_SERVER}/pythonworker:v2"))
    assert updated.containers[0].image.endswith(":v2")
    puts = [r.status for r in sb.world.request_log if r.method == "PUT"]
    assert puts == [201, 200]


@pytest.mark.parametrize("scope", [REGISTRY_ID, RG_ID, SUB_SCOPE], ids=["registry", "resource-group", "subscription"])
def test_acrpull_at_registry_or_inherited_scope_pulls(make_sandbox, scope):
    sb = _sandbox(make_sandbox, _acr_pull(scope))
    assert _create(sb).provisioning_state == "Succeeded"


def test_acrpull_on_another_registry_does_not_pull(make_sandbox):
    other = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/otheracr"
    sb = _sandbox(make_sandbox, _acr_pull(other))
    _assert_inaccessible(sb)


@pytest.mark.parametrize("role", [rbac.READER, rbac.OWNER, rbac.CONTRIBUTOR, rbac.ACR_PUSH],
                         ids=["Reader", "Owner", "Contributor", "AcrPush"])
def test_legacy_mode_wildcard_roles_pull(make_sandbox, role):
    sb = _sandbox(make_sandbox, assignment(RG_ID, role))
    assert _create(sb).provisioning_state == "Succeeded"


def test_without_a_role_the_image_is_inaccessible(make_sandbox):
    sb = _sandbox(make_sandbox)
    _assert_inaccessible(sb)


def test_a_role_for_another_principal_does_not_count(make_sandbox):
    sb = _sandbox(make_sandbox, assignment(REGISTRY_ID, rbac.ACR_PULL, principal=REMEDIATOR))
    _assert_inaccessible(sb)


# --- ABAC repository permissions ---------------------------------------------------------------

ABAC = {"roleAssignmentMode": "AbacRepositoryPermissions"}


def _repo_condition(repository: str, source: str = "Request") -> str:
    # The documented form (container-registry-rbac-abac-repository-permissions.md) uses @Request.
    return ("((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND "
            "!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR "
            f"(@{source}[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase "
            f"'{repository}'))")


@pytest.mark.parametrize("role", [rbac.ACR_PULL, rbac.OWNER], ids=["AcrPull", "Owner"])
def test_abac_mode_ignores_registry_level_roles(make_sandbox, role):
    sb = _sandbox(make_sandbox, assignment(REGISTRY_ID, role), registry_props=ABAC)
    _assert_inaccessible(sb)


def test_abac_mode_honours_repository_reader(make_sandbox):
    sb = _sandbox(make_sandbox, assignment(REGISTRY_ID, rbac.REPOSITORY_READER), registry_props=ABAC)
    assert _create(sb).provisioning_state == "Succeeded"


@pytest.mark.parametrize("source", ["Request", "Resource"])
def test_abac_condition_on_the_pulled_repository_allows(make_sandbox, source):
    reader = assignment(REGISTRY_ID, rbac.REPOSITORY_READER, condition=_repo_condition("pythonworker", source))
    sb = _sandbox(make_sandbox, reader, registry_props=ABAC)
    assert _create(sb).provisioning_state == "Succeeded"


@pytest.mark.parametrize("source", ["Request", "Resource"])
def test_abac_condition_limited_to_another_repository_denies(make_sandbox, source):
    reader = assignment(REGISTRY_ID, rbac.REPOSITORY_READER, condition=_repo_condition("otherrepo", source))
    sb = _sandbox(make_sandbox, reader, registry_props=ABAC)
    _assert_inaccessible(sb)


# --- custom roles -----------------------------------------------------------------------------

CUSTOM = "0c0c0c0c-0000-4000-8000-000000000001"


def _custom_role(actions: list[str], not_actions: list[str]) -> dict[str, Any]:
    return {"id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CUSTOM}",
            "name": CUSTOM, "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {"roleName": "Registry operator", "type": "CustomRole", "description": "test",
                           "assignableScopes": [SUB_SCOPE],
                           "permissions": [{"actions": actions, "notActions": not_actions,
                                            "dataActions": [], "notDataActions": []}]}}


def test_custom_role_with_wildcard_action_pulls_only_in_a_tenant_with_arm_private_link(make_sandbox):
    # container-registry-rbac-custom-roles.md: ACR honours a custom role's wildcard only with ARM private link
    wildcard = [_custom_role(["Microsoft.ContainerRegistry/*/read"], [])]
    _assert_inaccessible(_sandbox(make_sandbox, assignment(REGISTRY_ID, CUSTOM), roleDefinitions=wildcard))
    sb = _sandbox(make_sandbox, assignment(REGISTRY_ID, CUSTOM), roleDefinitions=wildcard,
                  behaviour={"rbacPropagationSeconds": 0, "tenantHasArmPrivateLink": True})
    assert _create(sb).provisioning_state == "Succeeded"


def test_custom_role_whose_not_actions_exclude_pull_does_not_pull(make_sandbox):
    role = _custom_role(["Microsoft.ContainerRegistry/registries/*"], ["Microsoft.ContainerRegistry/registries/pull/*"])
    sb = _sandbox(make_sandbox, assignment(REGISTRY_ID, CUSTOM), roleDefinitions=[role])
    _assert_inaccessible(sb)


# --- propagation ------------------------------------------------------------------------------


def test_a_new_assignment_counts_only_after_propagation(make_sandbox):
    sb = _sandbox(make_sandbox, behaviour={"rbacPropagationSeconds": 60})
    sb.world.put(_acr_pull(), created=sb.world.now())
    _assert_inaccessible(sb)
    assert sb.world.get(GROUP_ID) is None
    sb.world.advance(61)
    assert _create(sb).provisioning_state == "Succeeded"


# --- network, VNet, Windows ---------------------------------------------------------------------


@pytest.mark.parametrize("restriction", [{"publicNetworkAccess": "Disabled"},
                                         {"networkRuleSet": {"defaultAction": "Deny", "ipRules": []}}],
                         ids=["public-access-disabled", "default-deny"])
def test_restricted_registry_without_trusted_services_fails(make_sandbox, restriction):
    sb = _sandbox(make_sandbox, _acr_pull(), registry_props={**restriction, "networkRuleBypassOptions": "None"})
    _assert_inaccessible(sb)


def test_restricted_registry_with_trusted_services_pulls(make_sandbox):
    props = {"publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "AzureServices"}
    sb = _sandbox(make_sandbox, _acr_pull(), registry_props=props)
    assert _create(sb).provisioning_state == "Succeeded"


def _vnet_injected() -> dict[str, Any]:
    body = group_body()
    body["properties"]["subnetIds"] = [{"id": f"{RG_ID}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"}]
    body["properties"]["ipAddress"]["type"] = "Private"
    return body


def _windows() -> dict[str, Any]:
    body = group_body()
    body["properties"]["osType"] = "Windows"
    return body


# The ACI article (azure-compute-docs, using-azure-container-registry-mi.md, 2026-07) supports both
# with a user-assigned identity; the 2023 guide listed them as unsupported (CONTRACT.md §1, retired).
@pytest.mark.parametrize("body", [_vnet_injected, _windows], ids=["vnet-injected", "windows"])
def test_vnet_injected_and_windows_groups_pull_with_a_user_assigned_identity(make_sandbox, body):
    assert _create(_sandbox(make_sandbox, _acr_pull()), body()).provisioning_state == "Succeeded"
    _assert_inaccessible(_sandbox(make_sandbox), body())


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize("image", [f"{LOGIN_SERVER}/pythonworker:v9", f"{LOGIN_SERVER}/nosuchrepo:v1",
                                   f"{LOGIN_SERVER}/pythonworker"], ids=["missing-tag", "missing-repo", "no-latest"])
def test_missing_repository_or_tag_is_inaccessible(make_sandbox, image):
    sb = _sandbox(make_sandbox, _acr_pull())
    _assert_inaccessible(sb, group_body(image=image), image=image)


def test_digest_reference_pulls_when_the_registry_has_it(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    digest = registry_data.digest_of("pythonworker", "v2")  # what the registry data plane reports for v2
    assert _create(sb, group_body(image=f"{LOGIN_SERVER}/pythonworker@{digest}")).provisioning_state == "Succeeded"
    other = f"{LOGIN_SERVER}/pythonworker@sha256:" + "cd" * 32
    _assert_inaccessible(sb, group_body(image=other), image=other)


def test_unknown_acr_login_server_is_inaccessible(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    image = "ghostacr.azurecr.io/pythonworker:v1"
    body = group_body(image=image)
    body["properties"]["imageRegistryCredentials"][0]["server"] = "ghostacr.azurecr.io"
    _assert_inaccessible(sb, body, image=image)


@pytest.mark.parametrize("image", ["nginx", "mcr.microsoft.com/azuredocs/aci-helloworld:latest",
                                   "docker.io/library/busybox:1.36"])
def test_public_images_pull_without_credentials(make_sandbox, image):
    sb = _sandbox(make_sandbox)
    body = group_body(image=image)
    body["properties"]["imageRegistryCredentials"] = []
    assert _create(sb, body).containers[0].instance_view.current_state.state == "Running"


def test_init_container_images_are_pulled_too(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    body = group_body()
    missing = f"{LOGIN_SERVER}/init:v1"
    body["properties"]["initContainers"] = [{"name": "init", "properties": {"image": missing}}]
    _assert_inaccessible(sb, body, image=missing)


def test_admin_user_credential_pulls_only_when_admin_is_enabled(make_sandbox):
    body = group_body()
    body.pop("identity")
    body["properties"]["imageRegistryCredentials"] = [{"server": LOGIN_SERVER, "username": "myacr",
                                                        "password": "s3cret"}]
    _assert_inaccessible(_sandbox(make_sandbox), body)
    sb = _sandbox(make_sandbox, registry_props={"adminUserEnabled": True})
    group = _create(sb, body)
    assert group.provisioning_state == "Succeeded"
    assert group.image_registry_credentials[0].password is None
    assert "s3cret" not in json.dumps(sb.world.get(GROUP_ID))


def test_anonymous_pull_needs_anonymous_pull_enabled(make_sandbox):
    body = group_body()
    body.pop("identity")
    body["properties"]["imageRegistryCredentials"] = []
    _assert_inaccessible(_sandbox(make_sandbox), body)
    sb = _sandbox(make_sandbox, registry_props={"anonymousPullEnabled": True})
    assert _create(sb, body).provisioning_state == "Succeeded"


# --- definition errors (the troubleshooting guide's codes and messages) -------------------------------


def test_credential_without_server_is_invalid_request_content(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    body = group_body()
    body["properties"]["imageRegistryCredentials"] = [{"identity": IDENTITY_ID}]
    err = _fails(sb, body)
    assert err.error.code == "InvalidRequestContent"
    m = re.fullmatch(r"The request content was invalid and could not be deserialized: 'Required property 'server' "
                     r"not found in JSON\. Path 'properties\.imageRegistryCredentials\[0\]', line 1, "
                     r"position (\d+)\.'\.", err.error.message)
    assert m and 0 < int(m.group(1)) < len(json.dumps(body)) + 200
    assert sb.world.get(GROUP_ID) is None


def test_missing_server_position_is_where_the_credential_object_ends(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    body = group_body()
    body["properties"]["imageRegistryCredentials"] = [{"server": LOGIN_SERVER, "identity": IDENTITY_ID},
                                                      {"identity": IDENTITY_ID}]
    payload = json.dumps(body, separators=(",", ":"))
    second = payload.index("}", payload.index('"imageRegistryCredentials":[') + 1)  # end of [0]
    second = payload.index("}", second + 1)  # end of [1]
    status, answer = _put_raw(sb, GROUP_ID, payload)
    assert status == 400
    assert answer["error"]["message"].endswith(
        f"Path 'properties.imageRegistryCredentials[1]', line 1, position {second + 1}.'.")


def test_identity_with_old_api_version_is_not_supported(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    err = _fails(sb, api_version="2021-03-01")
    assert err.error.code == "InvalidImageRegistryCredentialType"
    assert err.error.message == f"Identity in 'imageRegistryCredentials' of container group '{NAME}' is not supported."


def test_old_api_version_without_identity_credentials_is_fine(make_sandbox):
    sb = _sandbox(make_sandbox, registry_props={"anonymousPullEnabled": True})
    body = group_body()
    body.pop("identity")
    body["properties"]["imageRegistryCredentials"] = []
    assert _create(sb, body, api_version="2021-03-01").provisioning_state == "Succeeded"


AMBIGUOUS = (f"The registry credential type in the 'imageRegistryCredentials' of container group '{NAME}' "
             "cannot be detected. Please set exactly one of username or identity")


@pytest.mark.parametrize("cred", [{"server": LOGIN_SERVER, "identity": IDENTITY_ID, "username": "myacr",
                                   "password": "x"},
                                  {"server": LOGIN_SERVER}], ids=["both", "neither"])
def test_ambiguous_credential_type(make_sandbox, cred):
    sb = _sandbox(make_sandbox, _acr_pull())
    body = group_body()
    body["properties"]["imageRegistryCredentials"] = [cred]
    err = _fails(sb, body)
    assert err.error.code == "AmbiguousImageResitryCredentialType"
    assert err.error.message == AMBIGUOUS


NOT_IN_LIST = (f"The identity in the 'imageRegistryCredentials' of container group '{NAME}' "
               "not found in container group identity list.")


@pytest.mark.parametrize("cred_identity", [IDENTITY_ID + "t", "[system]", "system"],
                         ids=["typo-myACRIdt", "system-bracketed", "system"])
def test_credential_identity_not_attached(make_sandbox, cred_identity):
    sb = _sandbox(make_sandbox, _acr_pull())
    body = group_body()
    body["identity"] = {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {IDENTITY_ID: {}}}
    body["properties"]["imageRegistryCredentials"][0]["identity"] = cred_identity
    err = _fails(sb, body)
    assert err.error.code == "InvalidImageRegistryIdentity"
    assert err.error.message == NOT_IN_LIST


def test_identity_match_is_case_insensitive(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    body = group_body()
    body["properties"]["imageRegistryCredentials"][0]["identity"] = IDENTITY_ID.upper()
    assert _create(sb, body).provisioning_state == "Succeeded"


def test_group_without_identity_block_fails_identity_credentials(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    body = group_body()
    body.pop("identity")
    assert _fails(sb, body).error.code == "InvalidImageRegistryIdentity"


def test_validation_order(make_sandbox):
    sb = _sandbox(make_sandbox)
    ambiguous = {"server": LOGIN_SERVER}
    body = group_body()
    body["properties"]["imageRegistryCredentials"] = [ambiguous, {"identity": IDENTITY_ID}]
    assert _fails(sb, body).error.code == "InvalidRequestContent"
    body["properties"]["imageRegistryCredentials"] = [ambiguous, {"server": LOGIN_SERVER, "identity": "[system]"}]
    assert _fails(sb, body, api_version="2019-12-01").error.code == "InvalidImageRegistryCredentialType"
    assert _fails(sb, body).error.code == "AmbiguousImageResitryCredentialType"
    body["properties"]["imageRegistryCredentials"] = [{"server": LOGIN_SERVER, "identity": "[system]"}]
    assert _fails(sb, body).error.code == "InvalidImageRegistryIdentity"


def test_attached_identity_that_does_not_exist(make_sandbox):
    sb = make_sandbox(world(resources=[registry()]))
    err = _fails(sb)
    assert err.error.code == "FailedIdentityOperation"
    assert IDENTITY_ID in err.error.message


# --- failed writes leave nothing behind, and are reported -------------------------------------------


def test_failed_update_leaves_the_existing_group_as_it_was(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    _create(sb)
    _assert_inaccessible(sb, group_body(image=f"{LOGIN_SERVER}/pythonworker:v9"),
                         image=f"{LOGIN_SERVER}/pythonworker:v9")
    group = sdk.aci(sb).container_groups.get(RG, NAME)
    assert group.containers[0].image == IMAGE
    assert group.provisioning_state == "Succeeded"


def test_failed_write_emits_write_failure_event_and_activity_log(make_sandbox):
    sb = _sandbox(make_sandbox)
    events: list[dict[str, Any]] = []
    sb.subscribe(events.append)
    body = group_body()
    body["properties"]["containers"][0]["properties"]["environmentVariables"] = [
        {"name": "TOKEN", "secureValue": "hush"}]
    err = _fails(sb, body)
    assert eventgrid.dispatcher(sb.world).wait_idle()
    failures = [e for e in events if e["eventType"] == "Microsoft.Resources.ResourceWriteFailure"]
    assert len(failures) == 1
    assert failures[0]["subject"].lower() == GROUP_ID.lower()
    assert failures[0]["data"]["operationName"] == containerinstance.WRITE
    assert failures[0]["data"]["status"] == "Failed"
    assert "httpRequest" not in failures[0]["data"]  # a first-time create

    records = [e.record for e in sb.world.activity if e.record["resourceId"].lower() == GROUP_ID.lower()]
    assert [r["status"]["value"] for r in records] == ["Started", "Failed"]
    failed = records[-1]
    assert failed["operationName"]["value"] == containerinstance.WRITE
    assert failed["correlationId"] == failures[0]["data"]["correlationId"]
    status = json.loads(failed["properties"]["statusMessage"])
    assert status["error"] == {"code": "InaccessibleImage", "message": INACCESSIBLE}
    assert err.error.message == INACCESSIBLE
    logged = json.loads(failed["properties"]["requestbody"])
    assert logged["properties"]["imageRegistryCredentials"] == [{"server": LOGIN_SERVER, "identity": IDENTITY_ID}]
    assert "hush" not in failed["properties"]["requestbody"]


def test_successful_write_logs_start_then_end_with_the_event(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull(), behaviour={"provisioningSeconds": 30})
    events: list[dict[str, Any]] = []
    sb.subscribe(events.append)
    sdk.aci(sb).container_groups.begin_create_or_update(RG, NAME, group_body(), polling=False).result()
    statuses = [e.record["status"]["value"] for e in sb.world.activity]
    assert statuses == ["Started"]
    assert sb.world.delivered == []
    sb.world.advance(31)
    sdk.aci(sb).container_groups.get(RG, NAME)
    assert eventgrid.dispatcher(sb.world).wait_idle()
    assert [e.record["status"]["value"] for e in sb.world.activity] == ["Started", "Succeeded"]
    assert [e["eventType"] for e in events] == ["Microsoft.Resources.ResourceWriteSuccess"]
    assert events[0]["data"]["operationName"] == containerinstance.WRITE


# --- read, list, delete, actions ----------------------------------------------------------------


def test_get_missing_group_is_resource_not_found(make_sandbox):
    sb = _sandbox(make_sandbox)
    with pytest.raises(ResourceNotFoundError) as info:
        sdk.aci(sb).container_groups.get(RG, "nope")
    assert info.value.error.code == "ResourceNotFound"


def test_list_and_delete(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    events: list[dict[str, Any]] = []
    sb.subscribe(events.append, included_event_types=["Microsoft.Resources.ResourceDeleteSuccess"])
    _create(sb, name="one")
    _create(sb, name="two")
    client = sdk.aci(sb)
    assert sorted(g.name for g in client.container_groups.list_by_resource_group(RG)) == ["one", "two"]
    assert sorted(g.name for g in client.container_groups.list()) == ["one", "two"]
    deleted = client.container_groups.begin_delete(RG, "one").result()
    assert deleted.name == "one"
    assert [g.name for g in client.container_groups.list()] == ["two"]
    with pytest.raises(ResourceNotFoundError):
        client.container_groups.get(RG, "one")
    client.container_groups.begin_delete(RG, "one").result()  # absent: 204, no error
    assert [r.status for r in sb.world.request_log if r.method == "DELETE"] == [200, 204]
    assert eventgrid.dispatcher(sb.world).wait_idle()
    assert [e["data"]["operationName"] for e in events] == [containerinstance.DELETE] * 2


def test_list_shows_the_remediator_only_what_it_may_read(make_sandbox):
    other_rg = f"/subscriptions/{SUB}/resourceGroups/other-rg"
    rg = {"id": other_rg, "name": "other-rg", "type": "Microsoft.Resources/resourceGroups", "location": "eastus",
          "properties": {"provisioningState": "Succeeded"}}
    reader = assignment(RG_ID, rbac.READER, principal=REMEDIATOR)
    sb = _sandbox(make_sandbox, rg, reader, _acr_pull(SUB_SCOPE), remediator=True)
    _create(sb, name="mine")
    sdk.aci(sb).container_groups.begin_create_or_update("other-rg", "theirs", group_body()).result()
    assert sorted(g.name for g in sdk.aci(sb).container_groups.list()) == ["mine", "theirs"]
    assert [g.name for g in sdk.aci(sb, REMEDIATOR).container_groups.list()] == ["mine"]
    with pytest.raises(HttpResponseError) as info:
        sdk.aci(sb, REMEDIATOR).container_groups.get("other-rg", "theirs")
    assert info.value.status_code == 403


def test_stop_start_restart(make_sandbox):
    sb = _sandbox(make_sandbox, _acr_pull())
    _create(sb)
    client = sdk.aci(sb)
    client.container_groups.stop(RG, NAME)
    stopped = client.container_groups.get(RG, NAME)
    assert stopped.instance_view.state == "Stopped"
    assert stopped.containers[0].instance_view.current_state.state == "Terminated"
    client.container_groups.begin_start(RG, NAME).result()
    assert client.container_groups.get(RG, NAME).containers[0].instance_view.current_state.state == "Running"
    client.container_groups.begin_restart(RG, NAME).result()
    assert client.container_groups.get(RG, NAME).containers[0].instance_view.restart_count == 1


# --- the functions the deployments surface uses --------------------------------------------------


def test_validate_and_provision_without_http(make_sandbox):
    sb = _sandbox(make_sandbox)
    error = containerinstance.validate(sb.world, GROUP_ID, group_body(), "2023-05-01")
    assert error == {"code": "InaccessibleImage", "message": INACCESSIBLE}
    sb.world.put(_acr_pull())
    assert containerinstance.validate(sb.world, GROUP_ID, group_body(), "2023-05-01") is None
    old = containerinstance.validate(sb.world, GROUP_ID, group_body(), "2021-03-01")
    assert old is not None and old["code"] == "InvalidImageRegistryCredentialType"
    stored = containerinstance.provision(sb.world, GROUP_ID, group_body(), "2023-05-01")
    assert stored["properties"]["provisioningState"] == "Succeeded"
    assert [e["name"] for e in stored["properties"]["containers"][0]["properties"]["instanceView"]["events"]] == [
        "Pulling", "Pulled", "Created", "Started"]
    assert sdk.aci(sb).container_groups.get(RG, NAME).provisioning_state == "Succeeded"


def test_validate_position_is_in_compact_json():
    body = group_body()
    body["properties"]["imageRegistryCredentials"] = [{"identity": IDENTITY_ID}]
    error = containerinstance.validate(World(parse_scenario(world())), GROUP_ID, body, "2023-05-01")
    compact = json.dumps(body, separators=(",", ":"))
    end = compact.index("}", compact.index('"imageRegistryCredentials":[')) + 1
    assert error is not None and error["message"].endswith(f"line 1, position {end}.'.")


@pytest.mark.parametrize("image, expected", [
    ("nginx", (None, "nginx", "latest", None)),
    ("myacr.azurecr.io/team/app:v1", ("myacr.azurecr.io", "team/app", "v1", None)),
    ("localhost:5000/app", ("localhost:5000", "app", "latest", None)),
    ("myacr.azurecr.io/app@sha256:00", ("myacr.azurecr.io", "app", None, "sha256:00")),
])
def test_parse_image(image, expected):
    ref = containerinstance.parse_image(image)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == expected
