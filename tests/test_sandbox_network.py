"""The sandbox's private networking: its ARM surface, a private endpoint refused in a delegated
subnet, the registry's connections, and ACI's pull through a private endpoint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from sandbox import Sandbox, eventgrid, rbac
from sandbox.surfaces import network

from . import sdk
from .networks import ACI_SUBNET, NET, ZONE_ID, endpoint, link, subnet_id, vnet, vnet_id, zone
from .worlds import IMAGE, REGISTRY_ID, RG, assignment, group_body, identity, registry, world

ACI = "Microsoft.ContainerInstance/containerGroups"
PE_ID = f"{NET}/privateEndpoints/myacr-pe"
RESTRICTED = {"publicNetworkAccess": "Disabled", "networkRuleSet": {"defaultAction": "Deny", "ipRules": []}}


def _sandbox(make_sandbox, *extra: dict[str, Any], registry_props: dict[str, Any] | None = None) -> Sandbox:
    resources = [registry(**(registry_props if registry_props is not None else RESTRICTED)), identity(),
                 assignment(REGISTRY_ID, rbac.ACR_PULL), *extra]
    return make_sandbox(world(resources=resources))


def _get(sb: Sandbox, resource_id: str, api_version: str = network.NETWORK_API_VERSION) -> dict[str, Any]:
    found = sdk.resources(sb).resources.get_by_id(resource_id, api_version=api_version)
    return {"id": found.id, "properties": found.properties}


def _list(sb: Sandbox, path: str, api_version: str) -> list[dict[str, Any]]:
    response = sdk.resources(sb).send_request(HttpRequest("GET", f"{path}?api-version={api_version}"))
    response.raise_for_status()
    return list(response.json()["value"])


def _put_endpoint(sb: Sandbox, subnet: str, target: str = REGISTRY_ID) -> Any:
    body = {"location": "eastus", "properties": endpoint("myacr-pe", subnet, target)["properties"]}
    return sdk.resources(sb).resources.begin_create_or_update_by_id(
        PE_ID, body, api_version=network.NETWORK_API_VERSION).result()


def _vnet_group() -> dict[str, Any]:
    body = group_body()
    body["properties"]["subnetIds"] = [{"id": ACI_SUBNET}]
    body["properties"]["ipAddress"]["type"] = "Private"
    return body


def _pulls(sb: Sandbox) -> bool:
    try:
        group = sdk.aci(sb).container_groups.begin_create_or_update(RG, "acrtestcontainergroup",
                                                                    _vnet_group()).result()
    except HttpResponseError as err:
        assert err.error is not None and err.error.code == "InaccessibleImage"
        assert IMAGE in err.error.message
        return False
    return group.provisioning_state == "Succeeded"


# --- the surface ------------------------------------------------------------------------------


def test_networks_endpoints_zones_and_links_read_in_arm_shape(make_sandbox):
    sb = _sandbox(make_sandbox, vnet("aci-vnet", {"aci-subnet": ACI, "pe-subnet": None}, {"hub": "Connected"}),
                  endpoint("myacr-pe", subnet_id("aci-vnet", "pe-subnet")), zone(), link("aci-vnet"))
    got = _get(sb, vnet_id("aci-vnet"))
    assert [s["name"] for s in got["properties"]["subnets"]] == ["aci-subnet", "pe-subnet"]
    assert got["properties"]["subnets"][0]["properties"]["delegations"][0]["properties"]["serviceName"] == ACI
    assert got["properties"]["virtualNetworkPeerings"][0]["properties"]["peeringState"] == "Connected"
    assert _get(sb, PE_ID)["properties"]["subnet"]["id"] == subnet_id("aci-vnet", "pe-subnet")
    assert _get(sb, ZONE_ID, network.PRIVATE_DNS_API_VERSION)["properties"]["provisioningState"] == "Succeeded"
    zones = _list(sb, f"/subscriptions/{ZONE_ID.split('/')[2]}/providers/Microsoft.Network/privateDnsZones",
                  network.PRIVATE_DNS_API_VERSION)
    assert [z["id"] for z in zones] == [ZONE_ID]
    (linked,) = _list(sb, f"{ZONE_ID}/virtualNetworkLinks", network.PRIVATE_DNS_API_VERSION)
    assert linked["properties"]["virtualNetwork"]["id"] == vnet_id("aci-vnet")


def test_registry_lists_a_connection_for_each_private_endpoint_that_targets_it(make_sandbox):
    other = REGISTRY_ID.replace("myacr", "otheracr")
    sb = _sandbox(make_sandbox, vnet("hub", {"pe-subnet": None}), endpoint("myacr-pe", subnet_id("hub", "pe-subnet")),
                  endpoint("other-pe", subnet_id("hub", "pe-subnet"), target=other))
    listed = list(sdk.acr(sb).private_endpoint_connections.list(RG, "myacr"))
    assert [c.private_endpoint.id for c in listed if c.private_endpoint] == [PE_ID]
    assert listed[0].private_link_service_connection_state.status == "Approved"
    got = sdk.acr(sb).registries.get(RG, "myacr")
    assert [c.private_endpoint.id for c in got.private_endpoint_connections or [] if c.private_endpoint] == [PE_ID]


def test_private_endpoint_in_a_delegated_subnet_fails_with_the_log_record_and_the_event(make_sandbox):
    sb = _sandbox(make_sandbox, vnet("aci-vnet", {"aci-subnet": ACI}))
    events: list[dict[str, Any]] = []
    sb.subscribe(events.append)
    with pytest.raises(HttpResponseError) as caught:
        _put_endpoint(sb, ACI_SUBNET)
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "PrivateEndpointCreationNotAllowedAsSubnetIsDelegated"
    assert caught.value.error.message == (
        f"Private endpoint {PE_ID} cannot be created as subnet {ACI_SUBNET} is delegated.")
    assert sb.world.get(PE_ID) is None
    assert eventgrid.dispatcher(sb.world).wait_idle()
    (failure,) = [e for e in events if e["eventType"] == "Microsoft.Resources.ResourceWriteFailure"]
    assert failure["subject"] == PE_ID
    assert failure["data"]["operationName"] == "Microsoft.Network/privateEndpoints/write"
    records = [e.record for e in sb.world.activity if e.record["resourceId"] == PE_ID]
    assert [r["status"]["value"] for r in records] == ["Started", "Failed"]
    assert json.loads(records[-1]["properties"]["statusMessage"])["error"]["code"] == caught.value.error.code
    logged = json.loads(records[-1]["properties"]["requestbody"])
    assert logged["properties"]["subnet"]["id"] == ACI_SUBNET
    assert records[-1]["correlationId"] == failure["data"]["correlationId"]


def test_private_endpoint_in_a_plain_subnet_is_created_and_reaches_the_registry(make_sandbox):
    sb = _sandbox(make_sandbox, vnet("aci-vnet", {"aci-subnet": ACI, "pe-subnet": None}))
    created = _put_endpoint(sb, subnet_id("aci-vnet", "pe-subnet"))
    assert created.properties["provisioningState"] == "Succeeded"
    listed = list(sdk.acr(sb).private_endpoint_connections.list(RG, "myacr"))
    assert [c.private_endpoint.id for c in listed if c.private_endpoint] == [PE_ID]


def test_private_endpoint_in_a_missing_subnet_is_refused(make_sandbox):
    sb = _sandbox(make_sandbox)
    with pytest.raises(HttpResponseError) as caught:
        _put_endpoint(sb, subnet_id("nowhere", "s"))
    assert caught.value.error is not None and caught.value.error.code == "InvalidResourceReference"


# --- ACI's pull through the network ---------------------------------------------------------

HUB = subnet_id("hub", "pe-subnet")
OWN = subnet_id("aci-vnet", "pe-subnet")


@pytest.mark.parametrize(("resources", "pulls"), [
    ([vnet("aci-vnet", {"aci-subnet": ACI, "pe-subnet": None}), endpoint("myacr-pe", OWN), zone(), link("aci-vnet")],
     True),
    ([vnet("aci-vnet", {"aci-subnet": ACI}, {"hub": "Connected"}), vnet("hub", {"pe-subnet": None}),
      endpoint("myacr-pe", HUB), zone(), link("aci-vnet")], True),
    # the peering listed only by the hub side counts too: Connected means both sides are in place
    ([vnet("aci-vnet", {"aci-subnet": ACI}), vnet("hub", {"pe-subnet": None}, {"aci-vnet": "Connected"}),
      endpoint("myacr-pe", HUB), zone(), link("aci-vnet")], True),
    ([vnet("aci-vnet", {"aci-subnet": ACI, "pe-subnet": None}), zone(), link("aci-vnet")], False),
    ([vnet("aci-vnet", {"aci-subnet": ACI}), vnet("hub", {"pe-subnet": None}), endpoint("myacr-pe", HUB), zone(),
      link("aci-vnet")], False),
    ([vnet("aci-vnet", {"aci-subnet": ACI}, {"hub": "Initiated"}), vnet("hub", {"pe-subnet": None}),
      endpoint("myacr-pe", HUB), zone(), link("aci-vnet")], False),
    ([vnet("aci-vnet", {"aci-subnet": ACI, "pe-subnet": None}), endpoint("myacr-pe", OWN), zone()], False),
    ([vnet("aci-vnet", {"aci-subnet": ACI}, {"hub": "Connected"}), vnet("hub", {"pe-subnet": None}),
      endpoint("myacr-pe", HUB), zone(), link("hub")], False),
    ([vnet("aci-vnet", {"aci-subnet": ACI, "pe-subnet": None}), endpoint("myacr-pe", OWN),
      zone("privatelink.blob.core.windows.net"), link("aci-vnet", "privatelink.blob.core.windows.net")], False),
    ([vnet("aci-vnet", {"aci-subnet": ACI, "pe-subnet": None}),
      endpoint("myacr-pe", OWN, target=REGISTRY_ID.replace("myacr", "otheracr")), zone(), link("aci-vnet")], False),
], ids=["endpoint-in-own-network", "endpoint-in-peered-network", "peering-listed-by-the-hub", "no-endpoint",
        "endpoint-in-unpeered-network", "peering-not-connected", "zone-not-linked", "zone-linked-to-hub-only",
        "another-zone-linked", "endpoint-of-another-registry"])
def test_vnet_injected_group_pulls_from_a_restricted_registry_only_through_a_private_path(make_sandbox, resources,
                                                                                        pulls):
    assert _pulls(_sandbox(make_sandbox, *resources)) is pulls


def test_an_open_registry_needs_no_private_path(make_sandbox):
    assert _pulls(_sandbox(make_sandbox, vnet("aci-vnet", {"aci-subnet": ACI}), registry_props={}))


def test_a_group_outside_any_network_still_pulls_as_a_trusted_service(make_sandbox):
    sb = _sandbox(make_sandbox, registry_props={**RESTRICTED, "networkRuleBypassOptions": "AzureServices"})
    group = sdk.aci(sb).container_groups.begin_create_or_update(RG, "g", group_body()).result()
    assert group.provisioning_state == "Succeeded"
