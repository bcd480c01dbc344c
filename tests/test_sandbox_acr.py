"""Container registries in the sandbox, through the real SDK clients: management plane and data plane."""

from __future__ import annotations

import copy
import hashlib
import json
import ssl
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import pytest
from azure.containerregistry import ContainerRegistryClient
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from sandbox import eventgrid
from sandbox.tokens import make_token

from . import sdk
from .reference import SAMPLES
from .worlds import (
    IDENTITY_PRINCIPAL,
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

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
REPOSITORY_READER = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
CATALOG_LISTER = "0f0e0d0c-0000-4000-8000-00000000ca7a"
IMAGES = {LOGIN_SERVER: {"pythonworker": ["v1", "v2"], "team/app": ["1.0", "2.0", "latest"]}}
OTHER = "cccccccc-0000-0000-0000-000000000001"


def _sample(name: str) -> dict[str, Any]:
    assert SAMPLES is not None
    return dict(json.loads((SAMPLES / name).read_text(encoding="utf-8")))


def _registry_error(err: HttpResponseError) -> dict[str, Any]:
    assert err.response is not None
    return dict(err.response.json()["errors"][0])


def _wait_events(sb) -> None:
    assert eventgrid.dispatcher(sb.world).wait_idle(5)


# --- management plane ------------------------------------------------------------------------

def test_sample_get_response_round_trips_through_the_sdk(make_sandbox):
    body = copy.deepcopy(_sample("acr_registries_get_2025-11-01.json")["responses"]["200"]["body"])
    body["id"] = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/myRegistry"
    sb = make_sandbox(world(resources=[body], images={}))
    reg = sdk.acr(sb).registries.get(RG, "myRegistry")
    assert reg.as_dict() == body
    assert reg.properties.policies.retention_policy.days == 7
    assert reg.properties.network_rule_bypass_options == "AzureServices"
    assert reg.properties.creation_date.year == 2021


def test_sparse_registry_gets_arm_defaults_without_losing_its_own_values(make_sandbox):
    sparse = {"id": REGISTRY_ID, "type": "Microsoft.ContainerRegistry/registries", "location": "eastus",
              "sku": {"name": "Premium"},
              "properties": {"loginServer": LOGIN_SERVER, "networkRuleBypassOptions": "None",
                             "networkRuleSet": {"defaultAction": "Deny"},
                             "policies": {"exportPolicy": {"status": "disabled"}}}}
    sb = make_sandbox(world(resources=[sparse]))
    reg = sdk.acr(sb).registries.get(RG, "myacr").as_dict()
    sample = _sample("acr_registries_get_2025-11-01.json")["responses"]["200"]["body"]
    assert set(reg) == set(sample)
    assert set(reg["properties"]) == set(sample["properties"])
    assert set(reg["properties"]["policies"]) == set(sample["properties"]["policies"])
    props = reg["properties"]
    assert props["networkRuleBypassOptions"] == "None"
    assert props["networkRuleSet"] == {"defaultAction": "Deny", "ipRules": []}
    assert props["policies"]["exportPolicy"] == {"status": "disabled"}
    assert props["provisioningState"] == "Succeeded" and props["creationDate"]
    assert reg["name"] == "myacr" and reg["sku"] == {"name": "Premium", "tier": "Premium"}


def test_list_by_group_and_subscription_filters_for_the_remediator(make_sandbox):
    other_id = f"/subscriptions/{SUB}/resourceGroups/other-rg/providers/Microsoft.ContainerRegistry/registries/otheracr"
    other = registry(loginServer="otheracr.azurecr.io") | {"id": other_id, "name": "otheracr"}
    reader = assignment(REGISTRY_ID, READER, principal=REMEDIATOR)
    sb = make_sandbox(world(resources=[registry(), other, identity(), reader], remediator=True))
    user = sdk.acr(sb)
    assert sorted(r.name for r in user.registries.list()) == ["myacr", "otheracr"]
    assert [r.name for r in user.registries.list_by_resource_group(RG)] == ["myacr"]
    remediator = sdk.acr(sb, REMEDIATOR)
    assert [r.name for r in remediator.registries.list()] == ["myacr"]
    assert [r.name for r in remediator.registries.list_by_resource_group("other-rg")] == []
    with pytest.raises(HttpResponseError) as info:
        remediator.registries.get("other-rg", "otheracr")
    assert info.value.status_code == 403 and info.value.error.code == "AuthorizationFailed"


def test_update_is_a_long_running_patch_that_merges(make_sandbox):
    start = registry(networkRuleBypassOptions="None", publicNetworkAccess="Disabled", adminUserEnabled=True)
    start["tags"] = {"owner": "team"}
    sb = make_sandbox(world(resources=[start, identity()]))
    patch = {"properties": {"networkRuleBypassOptions": "AzureServices"}, "tags": {"aci-remediation": "on"}}
    poller = sdk.acr(sb).registries.begin_update(RG, "myacr", patch)
    result = poller.result()
    assert result.properties.network_rule_bypass_options == "AzureServices"
    assert result.properties.provisioning_state == "Succeeded"
    # PATCH merges: what was not sent stays; tags are replaced as a whole
    assert result.properties.public_network_access == "Disabled" and result.properties.admin_user_enabled is True
    assert result.tags == {"aci-remediation": "on"}
    stored = sb.world.get(REGISTRY_ID)
    assert stored["properties"]["networkRuleBypassOptions"] == "AzureServices"
    assert stored["properties"]["provisioningState"] == "Succeeded"
    log = [(r.method, r.status) for r in sb.world.request_log]
    assert ("PATCH", 201) in log
    assert any("/operationStatuses/" in r.path for r in sb.world.request_log)


def test_update_stays_in_progress_until_the_operation_ends(make_sandbox):
    sb = make_sandbox(world(resources=[registry(networkRuleBypassOptions="None")],
                            behaviour={"registryWriteSeconds": 30}))
    received: list[dict[str, Any]] = []
    sb.subscribe(received.append)
    client = sdk.acr(sb)
    client.registries.begin_update(RG, "myacr", {"properties": {"networkRuleBypassOptions": "AzureServices"}},
                                   polling=False)
    during = client.registries.get(RG, "myacr")
    assert during.properties.provisioning_state == "Updating"
    assert during.properties.network_rule_bypass_options == "AzureServices"
    _wait_events(sb)
    assert received == []  # ARM raises the write event when the operation ends
    sb.world.advance(31)
    assert client.registries.get(RG, "myacr").properties.provisioning_state == "Succeeded"
    _wait_events(sb)
    assert [e["eventType"] for e in received] == ["Microsoft.Resources.ResourceWriteSuccess"]


def test_update_raises_write_event_and_activity_log(make_sandbox):
    sb = make_sandbox(world())
    received: list[dict[str, Any]] = []
    sb.subscribe(received.append)
    sdk.acr(sb).registries.begin_update(RG, "myacr", {"properties": {"anonymousPullEnabled": True}}).result()
    _wait_events(sb)
    assert len(received) == 1
    event = received[0]
    assert event["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert event["subject"].lower() == REGISTRY_ID.lower()
    assert event["data"]["operationName"] == "Microsoft.ContainerRegistry/registries/write"
    assert event["data"]["httpRequest"]["method"] == "PATCH"
    statuses = [e.record["status"]["value"] for e in sb.world.activity
                if e.record["resourceId"].lower() == REGISTRY_ID.lower()]
    assert statuses == ["Started", "Succeeded"]


def test_sample_update_body_is_accepted(make_sandbox):
    sample = _sample("acr_registries_update_2025-11-01.json")
    sb = make_sandbox(world())
    result = sdk.acr(sb).registries.begin_update(RG, "myacr", sample["parameters"]["registryUpdateParameters"]).result()
    expected = sample["responses"]["200"]["body"]
    assert result.tags == expected["tags"]
    assert result.sku.as_dict() == expected["sku"]
    assert result.properties.admin_user_enabled is True
    assert result.properties.role_assignment_mode == "AbacRepositoryPermissions"
    assert set(result.as_dict()["properties"]) == set(expected["properties"])


def test_sample_create_body_is_accepted_and_announced(make_sandbox):
    sample = _sample("acr_registries_createAbac_2025-11-01.json")
    sb = make_sandbox(world())
    received: list[dict[str, Any]] = []
    sb.subscribe(received.append)
    result = sdk.acr(sb).registries.begin_create(RG, "myRegistry", sample["parameters"]["registry"]).result()
    expected = sample["responses"]["200"]["body"]
    assert set(result.as_dict()) == set(expected)
    assert set(result.as_dict()["properties"]) == set(expected["properties"])
    assert result.properties.login_server == "myregistry.azurecr.io"  # ACR lower-cases login servers
    assert result.properties.role_assignment_mode == "AbacRepositoryPermissions"
    assert result.properties.provisioning_state == "Succeeded"
    assert result.sku.tier == "Standard" and result.location == "westus"
    assert sb.world.registry_by_login_server("myregistry.azurecr.io") is not None
    assert [r.status for r in sb.world.request_log if r.method == "PUT"] == [201]
    _wait_events(sb)
    assert [e["eventType"] for e in received] == ["Microsoft.Resources.ResourceWriteSuccess"]
    assert "httpRequest" not in received[0]["data"]  # a first-time create carries none


def test_create_needs_the_group_and_a_free_login_server(make_sandbox):
    sb = make_sandbox(world())
    with pytest.raises(ResourceNotFoundError) as info:
        sdk.acr(sb).registries.begin_create("missing-rg", "newacr", {"location": "eastus", "sku": {"name": "Basic"}})
    assert info.value.error.code == "ResourceGroupNotFound"
    sdk.resources(sb).resource_groups.create_or_update("second-rg", {"location": "eastus"})
    with pytest.raises(HttpResponseError) as info:
        sdk.acr(sb).registries.begin_create("second-rg", "MyAcr", {"location": "eastus", "sku": {"name": "Basic"}})
    assert info.value.status_code == 409 and info.value.error.code == "AlreadyInUse"


def test_invalid_update_is_rejected_and_leaves_the_registry(make_sandbox):
    sb = make_sandbox(world())
    received: list[dict[str, Any]] = []
    sb.subscribe(received.append)
    with pytest.raises(HttpResponseError) as info:
        sdk.acr(sb).registries.begin_update(RG, "myacr", {"properties": {"networkRuleBypassOptions": "Sometimes"}})
    assert info.value.status_code == 400 and info.value.error.code == "InvalidRequestContent"
    assert sb.world.get(REGISTRY_ID)["properties"]["networkRuleBypassOptions"] == "AzureServices"
    _wait_events(sb)
    assert [e["eventType"] for e in received] == ["Microsoft.Resources.ResourceWriteFailure"]


def test_remediator_without_registry_write_gets_authorization_failed(make_sandbox):
    reader = assignment(RG_ID, READER, principal=REMEDIATOR)
    sb = make_sandbox(world(resources=[registry(networkRuleBypassOptions="None"), identity(), reader],
                            remediator=True))
    client = sdk.acr(sb, REMEDIATOR)
    assert client.registries.get(RG, "myacr").properties.network_rule_bypass_options == "None"
    with pytest.raises(HttpResponseError) as info:
        client.registries.begin_update(RG, "myacr", {"properties": {"networkRuleBypassOptions": "AzureServices"}})
    assert info.value.status_code == 403 and info.value.error.code == "AuthorizationFailed"
    assert "Microsoft.ContainerRegistry/registries/write" in info.value.error.message
    assert sb.world.get(REGISTRY_ID)["properties"]["networkRuleBypassOptions"] == "None"


def test_remediator_with_contributor_may_update(make_sandbox):
    contributor = assignment(REGISTRY_ID, CONTRIBUTOR, principal=REMEDIATOR)
    sb = make_sandbox(world(resources=[registry(networkRuleBypassOptions="None"), contributor], remediator=True))
    poller = sdk.acr(sb, REMEDIATOR).registries.begin_update(
        RG, "myacr", {"properties": {"networkRuleBypassOptions": "AzureServices"}})
    assert poller.result().properties.network_rule_bypass_options == "AzureServices"
    assert [w.method for w in sb.world.writes(REMEDIATOR)] == ["PATCH"]


def test_private_endpoint_connections_are_listed(make_sandbox):
    pe_id = f"{RG_ID}/providers/Microsoft.Network/privateEndpoints/acr-pe"
    reg = registry(publicNetworkAccess="Disabled", privateEndpointConnections=[
        {"name": "acr-pe-conn", "properties": {"privateEndpoint": {"id": pe_id}}}])
    sb = make_sandbox(world(resources=[reg]))
    conns = list(sdk.acr(sb).private_endpoint_connections.list(RG, "myacr"))
    assert [c.name for c in conns] == ["acr-pe-conn"]
    assert conns[0].id == f"{REGISTRY_ID}/privateEndpointConnections/acr-pe-conn"
    assert conns[0].properties.private_endpoint.id == pe_id
    assert conns[0].properties.private_link_service_connection_state.status == "Approved"


# --- data plane ------------------------------------------------------------------------------

def _data_world(*assignments: dict[str, Any], behaviour: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    """The default world with ``IMAGES``, the given assignments and registry properties."""
    scenario = world(resources=[registry(**props), identity(), *assignments], images=copy.deepcopy(IMAGES))
    scenario["behaviour"].update(behaviour or {})
    return scenario


def test_tags_repositories_and_digests(make_sandbox):
    sb = make_sandbox(_data_world(assignment(REGISTRY_ID, ACR_PULL)))
    client = sdk.registry_data(sb, LOGIN_SERVER, IDENTITY_PRINCIPAL)
    tag = client.get_tag_properties("team/app", "1.0")
    expected = "sha256:" + hashlib.sha256(b"team/app:1.0").hexdigest()
    assert tag.name == "1.0" and tag.digest == expected
    by_digest = client.get_manifest_properties("team/app", expected)
    by_tag = client.get_manifest_properties("team/app", "1.0")
    assert by_digest.digest == by_tag.digest == expected and by_digest.tags == ["1.0"]
    assert client.get_repository_properties("team/app").tag_count == 3
    assert sorted(client.list_repository_names()) == ["pythonworker", "team/app"]
    assert [t.name for t in client.list_tag_properties("team/app", results_per_page=1)] == ["1.0", "2.0", "latest"]


def test_missing_tag_repository_and_digest_are_404s_in_registry_shape(make_sandbox):
    sb = make_sandbox(_data_world(assignment(REGISTRY_ID, ACR_PULL)))
    client = sdk.registry_data(sb, LOGIN_SERVER, IDENTITY_PRINCIPAL)
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_tag_properties("team/app", "9.9")
    assert _registry_error(info.value)["code"] == "TAG_UNKNOWN"
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_tag_properties("team/missing", "1.0")
    assert _registry_error(info.value)["code"] == "NAME_UNKNOWN"
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_manifest_properties("pythonworker", "sha256:" + "0" * 64)
    assert _registry_error(info.value)["code"] == "MANIFEST_UNKNOWN"


def test_unknown_login_server_is_404(make_sandbox):
    sb = make_sandbox(_data_world(assignment(REGISTRY_ID, ACR_PULL)))
    with pytest.raises(ResourceNotFoundError):
        sdk.registry_data(sb, "nosuchacr.azurecr.io", IDENTITY_PRINCIPAL).get_tag_properties("pythonworker", "v1")


@pytest.mark.parametrize("role", [ACR_PULL, READER])
def test_legacy_mode_honours_pull_read_including_wildcards(make_sandbox, role):
    sb = make_sandbox(_data_world(assignment(RG_ID, role)))
    assert sdk.registry_data(sb, LOGIN_SERVER, IDENTITY_PRINCIPAL).get_tag_properties("pythonworker", "v1").digest


def test_principal_without_pull_is_unauthorized(make_sandbox):
    sb = make_sandbox(_data_world(assignment(REGISTRY_ID, ACR_PULL), assignment(REGISTRY_ID, REPOSITORY_READER,
                                                                                principal=OTHER)))
    with pytest.raises(ClientAuthenticationError) as info:
        sdk.registry_data(sb, LOGIN_SERVER, OTHER).get_tag_properties("pythonworker", "v1")
    err = _registry_error(info.value)
    assert info.value.status_code == 401 and err["code"] == "UNAUTHORIZED"
    assert err["detail"] == [{"Type": "repository", "Name": "pythonworker", "Action": "metadata_read"}]


def test_rbac_propagation_delays_data_plane_access(make_sandbox):
    sb = make_sandbox(_data_world(behaviour={"rbacPropagationSeconds": 60}))
    sb.world.put(assignment(REGISTRY_ID, ACR_PULL))  # assigned "now", not yet propagated
    client = sdk.registry_data(sb, LOGIN_SERVER, IDENTITY_PRINCIPAL)
    with pytest.raises(ClientAuthenticationError):
        client.get_tag_properties("pythonworker", "v1")
    sb.world.advance(61)
    assert client.get_tag_properties("pythonworker", "v1").name == "v1"


def test_abac_mode_honours_repository_reader_not_acr_pull(make_sandbox):
    abac = {"roleAssignmentMode": "AbacRepositoryPermissions"}
    sb = make_sandbox(_data_world(assignment(REGISTRY_ID, ACR_PULL), assignment(REGISTRY_ID, REPOSITORY_READER,
                                                                                principal=OTHER), **abac))
    with pytest.raises(ClientAuthenticationError):
        sdk.registry_data(sb, LOGIN_SERVER, IDENTITY_PRINCIPAL).get_tag_properties("pythonworker", "v1")
    reader = sdk.registry_data(sb, LOGIN_SERVER, OTHER)
    assert reader.get_tag_properties("team/app", "latest").name == "latest"
    with pytest.raises(ClientAuthenticationError):  # listing repositories needs catalog/read
        list(reader.list_repository_names())


@pytest.mark.parametrize("source", ["Request", "Resource"])  # @Request is the documented form
def test_abac_condition_scopes_repository_reader_to_one_repository(make_sandbox, source):
    condition = ("((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'}) AND "
                 "!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR "
                 f"(@{source}[Microsoft.ContainerRegistry/registries/repositories:name] "
                 "StringEqualsIgnoreCase 'team/app'))")
    lister = {"id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CATALOG_LISTER}",
              "name": CATALOG_LISTER, "type": "Microsoft.Authorization/roleDefinitions",
              "properties": {"roleName": "Catalog Lister (test)", "type": "CustomRole", "assignableScopes": [RG_ID],
                             "permissions": [{"actions": [], "notActions": [], "notDataActions": [],
                                              "dataActions": ["Microsoft.ContainerRegistry/registries/catalog/read"]}]}}
    scenario = _data_world(assignment(REGISTRY_ID, REPOSITORY_READER, condition=condition),
                           assignment(REGISTRY_ID, CATALOG_LISTER), roleAssignmentMode="AbacRepositoryPermissions")
    scenario["roleDefinitions"] = [lister]
    sb = make_sandbox(scenario)
    client = sdk.registry_data(sb, LOGIN_SERVER, IDENTITY_PRINCIPAL)
    assert client.get_tag_properties("team/app", "1.0").name == "1.0"
    with pytest.raises(ClientAuthenticationError):
        client.get_tag_properties("pythonworker", "v1")
    assert sorted(client.list_repository_names()) == ["pythonworker", "team/app"]


@pytest.mark.parametrize("props", [
    {"publicNetworkAccess": "Disabled"},
    {"networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "203.0.113.0/24"}]}},
])
def test_network_restricted_registry_refuses_the_caller(make_sandbox, props):
    sb = make_sandbox(_data_world(assignment(REGISTRY_ID, ACR_PULL), **props))
    with pytest.raises(HttpResponseError) as info:
        sdk.registry_data(sb, LOGIN_SERVER, IDENTITY_PRINCIPAL).get_tag_properties("pythonworker", "v1")
    err = _registry_error(info.value)
    assert info.value.status_code == 403 and err["code"] == "DENIED"
    assert "client with IP '127.0.0.1' is not allowed access" in err["message"]


def test_ip_rule_admits_the_caller_and_opening_the_registry_takes_effect(make_sandbox):
    rules = {"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "127.0.0.0/8"}]}
    sb = make_sandbox(_data_world(assignment(REGISTRY_ID, ACR_PULL), networkRuleSet=rules))
    client = sdk.registry_data(sb, LOGIN_SERVER, IDENTITY_PRINCIPAL)
    assert client.get_tag_properties("pythonworker", "v1").name == "v1"
    sdk.acr(sb).registries.begin_update(RG, "myacr", {"properties": {"publicNetworkAccess": "Disabled"}}).result()
    with pytest.raises(HttpResponseError) as info:
        client.get_tag_properties("pythonworker", "v1")
    assert info.value.status_code == 403


def _raw(sb, path: str, *, data: bytes | None = None, token: str | None = None) -> tuple[int, dict[str, str], Any]:
    ctx = ssl.create_default_context(cafile=sb.ca_bundle)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(sb.registry_endpoint(LOGIN_SERVER) + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"{}")


def test_challenge_and_token_exchange_protocol(make_sandbox):
    sb = make_sandbox(_data_world(assignment(REGISTRY_ID, ACR_PULL)))
    status, headers, body = _raw(sb, "/acr/v1/team/app/_tags/1.0")
    assert status == 401 and body["errors"][0]["code"] == "UNAUTHORIZED"
    endpoint = sb.registry_endpoint(LOGIN_SERVER)
    assert headers["WWW-Authenticate"] == (f'Bearer realm="{endpoint}/oauth2/token",service="{LOGIN_SERVER}",'
                                           'scope="repository:team/app:metadata_read"')
    status, headers, _ = _raw(sb, "/v2/")
    assert status == 401 and "scope=" not in headers["WWW-Authenticate"]
    aad = make_token(IDENTITY_PRINCIPAL, TENANT)
    form = urlencode({"grant_type": "access_token", "service": LOGIN_SERVER, "access_token": aad}).encode()
    status, _, body = _raw(sb, "/oauth2/exchange", data=form)
    assert status == 200
    refresh = body["refresh_token"]
    form = urlencode({"grant_type": "refresh_token", "service": LOGIN_SERVER, "refresh_token": refresh,
                      "scope": "repository:team/app:metadata_read"}).encode()
    status, _, body = _raw(sb, "/oauth2/token", data=form)
    assert status == 200
    status, _, body = _raw(sb, "/acr/v1/team/app/_tags/1.0", token=body["access_token"])
    assert status == 200 and body["tag"]["name"] == "1.0" and body["imageName"] == "team/app"
    # the refresh token is not an access token, and a token from another tenant is refused
    assert _raw(sb, "/acr/v1/team/app/_tags/1.0", token=refresh)[0] == 401
    foreign = make_token(IDENTITY_PRINCIPAL, "99999999-9999-9999-9999-999999999999")
    form = urlencode({"grant_type": "access_token", "service": LOGIN_SERVER, "access_token": foreign}).encode()
    assert _raw(sb, "/oauth2/exchange", data=form)[0] == 401


def test_anonymous_pull_lets_a_client_without_credential_read(make_sandbox):
    sb = make_sandbox(_data_world(anonymousPullEnabled=True))
    anonymous = ContainerRegistryClient(sb.registry_endpoint(LOGIN_SERVER), None,
                                        audience="https://management.azure.com", connection_verify=sb.ca_bundle)
    assert anonymous.get_tag_properties("pythonworker", "v2").name == "v2"
    sdk.acr(sb).registries.begin_update(RG, "myacr", {"properties": {"anonymousPullEnabled": False}}).result()
    with pytest.raises(ClientAuthenticationError):
        anonymous.get_tag_properties("pythonworker", "v2")


def test_network_patch_reaches_aci_pulls_only_after_the_propagation_delay(make_sandbox):
    rules = {"defaultAction": "Deny", "ipRules": []}
    start = registry(publicNetworkAccess="Disabled", networkRuleSet=rules, networkRuleBypassOptions="None")
    sb = make_sandbox(world(resources=[start, identity(), assignment(REGISTRY_ID, ACR_PULL)],
                            behaviour={"networkPropagationSeconds": 30}))
    aci = sdk.aci(sb)

    def redeploy() -> str:
        try:
            return str(aci.container_groups.begin_create_or_update(RG, "pulls", group_body()).result()
                       .provisioning_state)
        except HttpResponseError as err:
            assert err.error is not None
            return str(err.error.code)

    assert redeploy() == "InaccessibleImage"
    sdk.acr(sb).registries.begin_update(RG, "myacr", {"properties": {"networkRuleBypassOptions": "AzureServices"}}
                                        ).result()
    # ARM shows the new setting at once; ACI's pulls still see the old one
    assert sdk.acr(sb).registries.get(RG, "myacr").properties.network_rule_bypass_options == "AzureServices"
    assert redeploy() == "InaccessibleImage"
    sb.world.advance(20)
    assert redeploy() == "InaccessibleImage"
    sb.world.advance(11)
    assert redeploy() == "Succeeded"
    # a later change that closes the registry again also waits its turn before it bites
    sdk.acr(sb).registries.begin_update(RG, "myacr", {"properties": {"networkRuleBypassOptions": "None"}}).result()
    assert redeploy() == "Succeeded"
    sb.world.advance(31)
    assert redeploy() == "InaccessibleImage"
