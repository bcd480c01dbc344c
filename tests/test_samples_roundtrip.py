"""The real ARM and Event Grid JSON samples (reference/samples, see SOURCES.md there) round-trip
through the sandbox and the real SDK models: what Azure documents, the sandbox accepts and
answers in the same shape.

Placeholders in the samples (``subid``, ``{subscription-id}``, ``xxxxxxxx-…``, ``<…>``) are
replaced with the default scenario's subscription and names; nothing else is edited unless a
test says why.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent
from azure.mgmt.authorization.models import RoleAssignment, RoleAssignmentCreateParameters
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import ContainerGroup
from azure.mgmt.containerregistry.models import Registry
from azure.mgmt.monitor.models import EventData

from sandbox import USER_PRINCIPAL, Sandbox
from sandbox.scenario import DEFAULT_SCENARIO

from . import sdk
from .reference import SAMPLES

BASE = json.loads(DEFAULT_SCENARIO.read_text(encoding="utf-8"))
SUB = BASE["subscriptions"][0]
RG = "myResourceGroup"
RG_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}"
REGISTRY_ID = f"{RG_ID}/providers/Microsoft.ContainerRegistry/registries/myacr"
IDENTITY_ID = f"{RG_ID}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/myACRId"
IDENTITY_PRINCIPAL = next(r["properties"]["principalId"] for r in BASE["resources"] if r["id"] == IDENTITY_ID)
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
PLACEHOLDER_SUBS = ("{subscription-id}", "subid", "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxxx",
                    "00000000-0000-0000-0000-000000000000", "a925f2f7-5c63-4b7b-8799-25a5f97bc3b2")

# Values ACI accepts on PUT and never returns (the samples' own responses leave them out).
ACI_SECRETS = (
    ("volumes", "*", "azure_file", "storage_account_key"),
    ("volumes", "*", "secret"),
    ("diagnostics", "log_analytics", "workspace_key"),
    ("image_registry_credentials", "*", "password"),
    ("containers", "*", "environment_variables", "*", "secure_value"),
)


def _sample(name: str) -> Any:
    assert SAMPLES is not None
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def _fill(value: Any, extra: dict[str, str] | None = None) -> Any:
    """The sample with its placeholder subscriptions (and ``extra`` strings) replaced."""
    text = json.dumps(value)
    for placeholder in PLACEHOLDER_SUBS:
        text = text.replace(placeholder, SUB)
    for old, new in (extra or {}).items():
        text = text.replace(old, new)
    return json.loads(text)


def _world(*resources: dict[str, Any], images: dict[str, Any] | None = None,
           role_definitions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The default scenario's world plus ``resources``, with myACRId allowed to pull from myacr."""
    data = copy.deepcopy(BASE)
    data["name"] = "samples"
    data.pop("deployer")  # the user plays every sample's caller, in any resource group
    name = "eeeeeeee-0000-0000-0000-0000000000ff"
    pull = {"id": f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/{name}", "name": name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {"scope": REGISTRY_ID, "principalId": IDENTITY_PRINCIPAL,
                           "principalType": "ServicePrincipal",
                           "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/"
                                               f"roleDefinitions/{ACR_PULL}"}}
    data["resources"] += [pull, *resources]
    for server, repos in (images or {}).items():
        data["images"].setdefault(server, {}).update(repos)
    data["roleDefinitions"] += role_definitions or []
    return data


def _group(rg: str) -> dict[str, Any]:
    return {"id": f"/subscriptions/{SUB}/resourceGroups/{rg}", "name": rg, "type": "Microsoft.Resources/resourceGroups",
            "location": "westus", "tags": {}, "properties": {"provisioningState": "Succeeded"}}


def _fail_create(sb: Sandbox) -> None:
    """The default scenario's create, for a tag that does not exist: it fails with InaccessibleImage."""
    failed = copy.deepcopy(BASE["failedWrite"])
    failed["body"]["properties"]["containers"][0]["properties"]["image"] = "myacr.azurecr.io/pythonworker:nope"
    with pytest.raises(HttpResponseError) as info:
        _aci(sb, failed["apiVersion"]).container_groups.begin_create_or_update(
            RG, failed["resourceId"].rsplit("/", 1)[-1], failed["body"]).result()
    assert info.value.error.code == "InaccessibleImage"


@pytest.fixture
def start() -> Iterator[Callable[[dict[str, Any]], Sandbox]]:
    sandboxes: list[Sandbox] = []

    def run(scenario: dict[str, Any]) -> Sandbox:
        sb = Sandbox(scenario)
        sandboxes.append(sb)
        return sb

    yield run
    for sb in sandboxes:
        errors = sb.errors()
        sb.stop()
        assert not errors, f"sandbox internal errors: {errors}"


def _aci(sb: Sandbox, api_version: str) -> ContainerInstanceManagementClient:
    return ContainerInstanceManagementClient(sb.credential(USER_PRINCIPAL), SUB, api_version=api_version,
                                             base_url=sb.arm_endpoint, connection_verify=sb.ca_bundle,
                                             polling_interval=0.05)


# --- comparing SDK models ---------------------------------------------------------------------


def _drop(tree: Any, path: tuple[str, ...]) -> None:
    if not path or tree is None:
        return
    head, rest = path[0], path[1:]
    items = tree if head == "*" and isinstance(tree, list) else None
    if items is not None:
        for item in items:
            _drop(item, rest)
    elif isinstance(tree, dict) and head in tree:
        if rest:
            _drop(tree[head], rest)
        else:
            del tree[head]


def _present(tree: Any, path: tuple[str, ...]) -> bool:
    if not path:
        return tree not in (None, {}, "")  # ARM returns "secret": {} with the values removed
    head, rest = path[0], path[1:]
    if head == "*":
        return isinstance(tree, list) and any(_present(item, rest) for item in tree)
    return isinstance(tree, dict) and head in tree and _present(tree[head], rest)


def _assert_sent_fields_returned(sent: Any, got: Any, where: str = "") -> None:
    """Every value in ``sent`` is in ``got`` at the same place (``got`` may hold more)."""
    if isinstance(sent, dict):
        assert isinstance(got, dict), f"{where}: expected an object, got {got!r}"
        for key, value in sent.items():
            assert key in got, f"{where}.{key} was sent but not returned"
            _assert_sent_fields_returned(value, got[key], f"{where}.{key}")
    elif isinstance(sent, list):
        assert isinstance(got, list) and len(got) == len(sent), f"{where}: {sent!r} became {got!r}"
        for i, (a, b) in enumerate(zip(sent, got, strict=True)):
            _assert_sent_fields_returned(a, b, f"{where}[{i}]")
    else:
        assert sent == got, f"{where}: sent {sent!r}, got {got!r}"


def _put_and_compare(sb: Sandbox, api_version: str, name: str, body: dict[str, Any], rg: str = RG) -> ContainerGroup:
    """PUT ``body`` through the SDK, GET it back, and check every non-secret field sent came back."""
    sent = ContainerGroup.from_dict(body)
    client = _aci(sb, api_version)
    created = client.container_groups.begin_create_or_update(rg, name, sent).result()
    assert created.provisioning_state == "Succeeded"
    got = client.container_groups.get(rg, name)
    sent_tree, got_tree = sent.as_dict(), got.as_dict()
    for secret in ACI_SECRETS:
        assert not _present(got_tree, secret), f"{'.'.join(secret)} must not be returned"
        _drop(sent_tree, secret)
    assert sent_tree.pop("location").replace(" ", "").lower() == got_tree.pop("location").replace(" ", "").lower()
    _assert_sent_fields_returned(sent_tree, got_tree)
    assert got.id.lower() == f"/subscriptions/{SUB}/resourcegroups/{rg}/providers/microsoft.containerinstance/" \
                             f"containergroups/{name}".lower()
    return got


# --- ACI --------------------------------------------------------------------------------------


def test_spec_example_with_identities_and_subnet_round_trips(start: Callable[[dict[str, Any]], Sandbox]) -> None:
    sample = _fill(_sample("aci_containerGroups_createOrUpdate_identity_subnet_2021-10-01.json"))
    params = sample["parameters"]
    identity_id = next(iter(params["containerGroup"]["identity"]["userAssignedIdentities"]))
    extra_identity = {"id": identity_id, "name": "identity-name", "location": "westus",
                      "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                      "properties": {"principalId": "aaaaaaaa-0000-0000-0000-0000000000f1",
                                     "clientId": "aaaaaaaa-0000-0000-0000-0000000000f2",
                                     "tenantId": BASE["tenantId"]}}
    sb = start(_world(_group(params["resourceGroupName"]), extra_identity))
    got = _put_and_compare(sb, params["api-version"], params["containerGroupName"], params["containerGroup"],
                           rg=params["resourceGroupName"])
    # what the example's own response shows the service fills in or leaves out
    expected = ContainerGroup.deserialize(sample["responses"]["200"]["body"])
    assert got.ip_address.ip and got.ip_address.type == expected.ip_address.type
    assert got.identity.user_assigned_identities[identity_id].principal_id == "aaaaaaaa-0000-0000-0000-0000000000f1"
    assert got.identity.principal_id, "a system-assigned identity gets a principal id"


def test_spec_example_confidential_round_trips(start: Callable[[dict[str, Any]], Sandbox]) -> None:
    sample = _fill(_sample("aci_containerGroup_createConfidential_2023-05-01.json"))
    params = sample["parameters"]
    sb = start(_world(_group(params["resourceGroupName"])))
    got = _put_and_compare(sb, params["api-version"], params["containerGroupName"], params["containerGroup"],
                           rg=params["resourceGroupName"])
    expected = ContainerGroup.deserialize(sample["responses"]["200"]["body"])
    assert got.sku == expected.sku == "Confidential"
    assert got.confidential_compute_properties.cce_policy == expected.confidential_compute_properties.cce_policy
    assert got.containers[0].security_context.capabilities.add == ["CAP_NET_ADMIN"]


def _docs_group() -> tuple[str, str, dict[str, Any]]:
    """The 2021 docs' ARM resource as (api-version, name, PUT body): template-only keys removed."""
    resource = _fill(_sample("aci_arm_containerGroup_acr_user_assigned_identity_docs_2021.json"))
    api_version, name = resource.pop("apiVersion"), resource.pop("name")
    assert resource.pop("type") == "Microsoft.ContainerInstance/containerGroups"
    return api_version, name, resource


def test_docs_example_fails_on_its_identity_typo_then_round_trips(start: Callable[[dict[str, Any]], Sandbox]) -> None:
    api_version, name, body = _docs_group()
    sb = start(_world(images={"myacr.azurecr.io": {"hello-world": ["latest"]}}))
    # as published, the credential names myACRIdt while the group has myACRId (SOURCES.md)
    with pytest.raises(HttpResponseError) as info:
        _aci(sb, api_version).container_groups.begin_create_or_update(RG, name, body).result()
    assert info.value.error.code == "InvalidImageRegistryIdentity"
    assert info.value.error.message == (f"The identity in the 'imageRegistryCredentials' of container group "
                                        f"'{name}' not found in container group identity list.")
    fixed = copy.deepcopy(body)
    cred = fixed["properties"]["imageRegistryCredentials"][0]
    cred["identity"] = cred["identity"].removesuffix("t")
    got = _put_and_compare(sb, api_version, name, fixed)
    assert got.image_registry_credentials[0].identity.lower() == IDENTITY_ID.lower()
    events = got.containers[0].instance_view.events
    assert {"Pulled", "Started"} <= {e.name for e in events}


def test_support_article_fragment_round_trips(start: Callable[[dict[str, Any]], Sandbox]) -> None:
    fragment = _fill(_sample("aci_identity_and_imageRegistryCredentials_fragment_support_article.json"),
                     {"<user-assigned-managed-identity-resource-id>": IDENTITY_ID, "<registry-name>": "myacr"})
    body = {"location": "eastus", "identity": fragment["identity"], "properties": {
        **fragment["properties"], "osType": "Linux",
        "containers": [{"name": "pythonworker", "properties": {
            "image": "myacr.azurecr.io/pythonworker:v1", "resources": {"requests": {"cpu": 1, "memoryInGB": 1.5}}}}]}}
    sb = start(_world())
    got = _put_and_compare(sb, "2023-05-01", "acrtestcontainergroup", body)
    assert got.identity.user_assigned_identities[IDENTITY_ID].principal_id == IDENTITY_PRINCIPAL


def test_spec_failed_group_is_served_as_stored(start: Callable[[dict[str, Any]], Sandbox]) -> None:
    sample = _fill(_sample("aci_containerGroups_get_failed_2021-10-01.json"))
    stored = sample["responses"]["200"]["body"]
    sb = start(_world(stored))
    params = sample["parameters"]
    got = _aci(sb, params["api-version"]).container_groups.get(params["resourceGroupName"],
                                                               params["containerGroupName"])
    assert got.as_dict() == ContainerGroup.deserialize(stored).as_dict()
    assert got.provisioning_state == "Failed" and got.instance_view.events[0].name == "FailedMount"


# --- ACR --------------------------------------------------------------------------------------


def test_registry_get_sample_round_trips(start: Callable[[dict[str, Any]], Sandbox]) -> None:
    sample = _fill(_sample("acr_registries_get_2025-11-01.json"))
    stored = sample["responses"]["200"]["body"]
    sb = start(_world(stored))
    params = sample["parameters"]
    got = sdk.acr(sb).registries.get(params["resourceGroupName"], params["registryName"])
    assert got.as_dict() == Registry(stored).as_dict()
    assert got.properties.network_rule_bypass_options == "AzureServices"
    assert got.properties.role_assignment_mode == "LegacyRegistryPermissions"


def test_registry_create_abac_and_update_samples(start: Callable[[dict[str, Any]], Sandbox]) -> None:
    create = _fill(_sample("acr_registries_createAbac_2025-11-01.json"))
    update = _fill(_sample("acr_registries_update_2025-11-01.json"))
    sb = start(_world())
    params = create["parameters"]
    client = sdk.acr(sb)
    created = client.registries.begin_create(params["resourceGroupName"], params["registryName"],
                                             Registry(params["registry"])).result()
    expected = Registry(create["responses"]["200"]["body"])
    for field in ("role_assignment_mode", "public_network_access", "network_rule_bypass_options",
                  "anonymous_pull_enabled", "provisioning_state"):
        assert getattr(created.properties, field) == getattr(expected.properties, field), field
    assert created.tags == expected.tags and created.sku.name == expected.sku.name
    up = update["parameters"]
    updated = client.registries.begin_update(up["resourceGroupName"], up["registryName"],
                                             up["registryUpdateParameters"]).result()
    after = Registry(update["responses"]["200"]["body"])
    assert updated.properties.admin_user_enabled is after.properties.admin_user_enabled is True
    assert updated.properties.role_assignment_mode == after.properties.role_assignment_mode


# --- RBAC -------------------------------------------------------------------------------------


def test_role_assignment_create_and_list_samples(start: Callable[[dict[str, Any]], Sandbox]) -> None:
    create = _fill(_sample("authorization_roleAssignments_createForResource_2022-04-01.json"))
    listed = _fill(_sample("authorization_roleAssignments_listForScope_2022-04-01.json"))
    params = create["parameters"]
    scope = "/" + params["scope"]
    role_guid = params["parameters"]["properties"]["roleDefinitionId"].rsplit("/", 1)[-1]
    account = {"id": scope, "name": scope.rsplit("/", 1)[-1], "type": "Microsoft.DocumentDB/databaseAccounts",
               "location": "eastus", "properties": {}}
    # the example's role is not one the sandbox knows as built-in; add it as a custom role
    role = {"id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
            "name": role_guid, "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {"roleName": "Sample role", "type": "CustomRole",
                           "assignableScopes": [f"/subscriptions/{SUB}"],
                           "permissions": [{"actions": ["Microsoft.DocumentDB/*/read"], "notActions": []}]}}
    sb = start(_world(account, role_definitions=[role]))
    client = sdk.authz(sb)
    body = RoleAssignmentCreateParameters.deserialize(params["parameters"])
    first = client.role_assignments.create(scope, params["roleAssignmentName"], body)
    again = client.role_assignments.create(scope, params["roleAssignmentName"], body)
    statuses = [r.status for r in sb.world.request_log if r.method == "PUT" and "roleAssignments" in r.path]
    assert statuses == [201, 200]
    for response, got in (("201", first), ("200", again)):
        expected = RoleAssignment.deserialize(create["responses"][response]["body"])
        for field in ("id", "name", "type", "principal_id", "principal_type", "scope"):
            assert getattr(got, field) == getattr(expected, field), field
        assert got.role_definition_id.rsplit("/", 1)[-1] == expected.role_definition_id.rsplit("/", 1)[-1]

    item = listed["responses"]["200"]["body"]["value"][0]
    client.role_assignments.create(item["properties"]["scope"], item["name"],
                                   {"properties": {k: item["properties"][k]
                                                   for k in ("roleDefinitionId", "principalId", "principalType")}})
    found = [a for a in client.role_assignments.list_for_scope("/" + listed["parameters"]["scope"],
                                                               filter="atScope()")
             if a.name == item["name"]]
    expected_item = RoleAssignment.deserialize(item)
    assert len(found) == 1
    for field in ("id", "name", "type", "principal_id", "principal_type", "scope"):
        assert getattr(found[0], field) == getattr(expected_item, field), field


# --- Activity Log -----------------------------------------------------------------------------


def test_activity_log_sample_filter_and_record_shape(start: Callable[[dict[str, Any]], Sandbox]) -> None:
    sample = _sample("monitor_activityLogs_listFiltered_2015-04-01.json")
    sb = start(_world())
    _fail_create(sb)  # a write for the log to hold
    # the sample's filter form, over a window around now, for the scenario's resource group
    now = datetime.now(UTC)
    start_at, end_at = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), \
        (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    filter_text = sample["parameters"]["$filter"].replace("2015-01-21T20:00:00Z", start_at) \
        .replace("2015-01-23T20:00:00Z", end_at).replace("MSSupportGroup", RG)
    records = list(sdk.monitor(sb).activity_logs.list(filter=filter_text))
    ended = [r for r in records if r.event_name.value == "EndRequest"]
    assert ended, "the failed write's EndRequest record is listed"
    expected = EventData.deserialize(sample["responses"]["200"]["body"]["value"][0])
    wanted = {k for k, v in expected.as_dict().items() if v is not None}
    have = {k for k, v in ended[0].as_dict().items() if v is not None}
    assert wanted <= have, f"missing {wanted - have}"
    assert ended[0].status.value == "Failed" and ended[0].properties["statusCode"] == "BadRequest"
    assert ended[0].resource_group_name == RG


# --- Event Grid -------------------------------------------------------------------------------


EVENT_GRID_SAMPLES = [
    "eventgrid_arm_ResourceWriteSuccess_eventgridschema_resourcegroup_topic.json",
    "eventgrid_arm_ResourceDeleteSuccess_eventgridschema_subscription_topic_with_httpRequest.json",
    "eventgrid_deadletter_event_eventgridschema.json",
]


@pytest.mark.parametrize("name", EVENT_GRID_SAMPLES)
def test_event_grid_samples_parse(name: str) -> None:
    raw = _sample(name)
    for item in raw if isinstance(raw, list) else [raw]:
        event = EventGridEvent.from_dict(item)
        assert (event.id, event.subject, event.event_type) == (item["id"], item["subject"], item["eventType"])
        assert event.data == item["data"]


def test_cloud_events_sample_parses() -> None:
    for item in _sample("eventgrid_arm_ResourceWriteSuccess_cloudevents_resourcegroup_source.json"):
        event = CloudEvent.from_dict(item)
        assert (event.source, event.type, event.specversion) == (item["source"], item["type"], "1.0")
        assert event.data == item["data"]


def _received(sub: Any, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.time() + timeout
    while len(sub.received) < count and time.time() < deadline:
        time.sleep(0.02)
    return list(sub.received)


def test_sandbox_events_have_the_samples_shape(start: Callable[[dict[str, Any]], Sandbox]) -> None:
    """A sandbox ResourceWriteFailure parses as the samples do and carries every field they carry."""
    write_sample = _sample("eventgrid_arm_ResourceWriteSuccess_eventgridschema_resourcegroup_topic.json")[0]
    cloud_sample = _sample("eventgrid_arm_ResourceWriteSuccess_cloudevents_resourcegroup_source.json")[0]
    sb = start(_world())
    grid = sb.subscribe(lambda event: None, included_event_types=["Microsoft.Resources.ResourceWriteFailure"])
    cloud = sb.subscribe(lambda event: None, schema="CloudEventSchemaV1_0",
                         included_event_types=["Microsoft.Resources.ResourceWriteFailure"])
    _fail_create(sb)
    [grid_event] = _received(grid)
    [cloud_event] = _received(cloud)

    parsed = EventGridEvent.from_dict(grid_event)
    assert parsed.event_type == "Microsoft.Resources.ResourceWriteFailure"
    assert parsed.subject.lower() == BASE["failedWrite"]["resourceId"].lower()
    assert set(write_sample) <= set(grid_event)
    # a first-time create has no httpRequest, like the sample
    assert set(grid_event["data"]) == set(write_sample["data"])
    assert grid_event["data"]["operationName"] == "Microsoft.ContainerInstance/containerGroups/write"
    assert grid_event["topic"].lower() == f"/subscriptions/{SUB}".lower()  # a subscription system topic

    parsed_cloud = CloudEvent.from_dict(cloud_event)
    assert parsed_cloud.type == "Microsoft.Resources.ResourceWriteFailure"
    assert set(cloud_sample) <= set(cloud_event)
    assert parsed_cloud.data["correlationId"] == grid_event["data"]["correlationId"]
