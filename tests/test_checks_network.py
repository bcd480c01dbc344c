"""The two network causes on hand-built contexts (the helpers of tests/test_checks.py): each fires in
its case and stays quiet in the near misses, and where what it needs could not be read."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from remediation.azure.gather import _endpoint_from_body
from remediation.checks import is_image_pull_failure, run_checks
from remediation.model import (
    PRIVATE_ENDPOINT_WRITE,
    Context,
    ErrorInfo,
    FailureSignal,
    NetworkFacts,
    PrivateEndpoint,
    Subnet,
)
from tests.test_checks import REGISTRY_ID, SUB, context, definition, only, registry

NET = f"{SUB}/resourceGroups/rg-net/providers/Microsoft.Network"
ACI_VNET = f"{NET}/virtualNetworks/aci-vnet"
HUB = f"{NET}/virtualNetworks/hub"
ACI_SUBNET = f"{ACI_VNET}/subnets/aci-subnet"
PE_SUBNET = f"{ACI_VNET}/subnets/pe-subnet"
ZONE = f"{NET}/privateDnsZones/privatelink.azurecr.io"
ACI = "Microsoft.ContainerInstance/containerGroups"
PE_ID = f"{NET}/privateEndpoints/myacr-pe"
VNET_CODE = "ACI_VNET_REGISTRY_UNREACHABLE"
PE_CODE = "ACI_PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET"
DELEGATED = "PrivateEndpointCreationNotAllowedAsSubnetIsDelegated"
RESTRICTED = {"public_network_access": "Disabled"}


def facts(*, endpoints: tuple[PrivateEndpoint, ...] | None = (PrivateEndpoint(PE_ID, PE_SUBNET, (REGISTRY_ID,)),),
          linked: tuple[str, ...] = (ACI_VNET,), **changes: Any) -> NetworkFacts:
    """A group in aci-vnet whose registry's endpoint sits in its own pe-subnet, the zone linked: a private path."""
    base = NetworkFacts(
        group_vnets=(ACI_VNET,),
        endpoints={} if endpoints is None else {REGISTRY_ID.lower(): endpoints},
        dns_zones=(ZONE,),
        dns_links={ZONE.lower(): linked},
        subnets={ACI_VNET.lower(): (Subnet(ACI_SUBNET, (ACI,)), Subnet(PE_SUBNET))},
    )
    return dataclasses.replace(base, **changes)


def vnet_context(network: NetworkFacts | None, **registry_changes: Any) -> Context:
    return context(group=definition(subnet_ids=(ACI_SUBNET,)), reg=registry(**(registry_changes or RESTRICTED)),
                   network=network)


def vnet_codes(ctx: Context) -> list[str]:
    return [f.code for f in run_checks(ctx) if f.code == VNET_CODE]


# --- ACI_VNET_REGISTRY_UNREACHABLE --------------------------------------------------------------


@pytest.mark.parametrize("network", [
    facts(),
    facts(endpoints=(PrivateEndpoint(PE_ID, f"{HUB}/subnets/pe", (REGISTRY_ID,)),),
          peerings={ACI_VNET.lower(): (HUB,)}),
], ids=["own-network", "peered-network"])
def test_a_private_path_is_not_a_cause(network: NetworkFacts) -> None:
    assert vnet_codes(vnet_context(network)) == []


def test_no_endpoint_in_reach_proposes_one_in_a_non_delegated_subnet() -> None:
    found = only(vnet_context(facts(endpoints=())), VNET_CODE)
    assert found.fixable is False
    assert found.evidence["missing"] == ["a private endpoint of the registry in the group's or a peered network"]
    (command,) = found.evidence["commands"]
    assert command.startswith("az network private-endpoint create") and "--subnet pe-subnet" in command
    assert f"--private-connection-resource-id {REGISTRY_ID} --group-id registry" in command


def test_an_endpoint_in_an_unpeered_network_proposes_the_peering_or_an_endpoint() -> None:
    elsewhere = PrivateEndpoint(PE_ID, f"{HUB}/subnets/pe", (REGISTRY_ID,))
    found = only(vnet_context(facts(endpoints=(elsewhere,))), VNET_CODE)
    assert found.evidence["privateEndpoints"] == [{"id": PE_ID, "subnet": f"{HUB}/subnets/pe", "virtualNetwork": HUB}]
    assert found.evidence["peeredNetworks"] == []
    peering, create = found.evidence["commands"]
    assert peering.startswith("az network vnet peering create") and f"--remote-vnet {HUB}" in peering
    assert create.startswith("az network private-endpoint create")
    assert "peer aci-vnet with hub" in found.evidence["proposal"]


def test_an_unlinked_zone_proposes_the_link() -> None:
    found = only(vnet_context(facts(linked=(HUB,))), VNET_CODE)
    assert found.evidence["missing"] == ["a privatelink.azurecr.io private DNS zone linked to the group's network"]
    assert found.evidence["dnsZoneLinks"] == {ZONE: [HUB]}
    (command,) = found.evidence["commands"]
    assert command.startswith("az network private-dns link vnet create --resource-group rg-net")
    assert f"--virtual-network {ACI_VNET}" in command


def test_without_any_zone_the_zone_is_proposed_too() -> None:
    found = only(vnet_context(facts(dns_zones=(), dns_links={})), VNET_CODE)
    create, link = found.evidence["commands"]
    assert create.startswith("az network private-dns zone create") and link.startswith("az network private-dns link")


@pytest.mark.parametrize("ctx", [
    vnet_context(facts(endpoints=()), public_network_access="Enabled", default_action="Allow"),
    vnet_context(None),
    vnet_context(facts(endpoints=None)),
    vnet_context(facts(endpoints=(), dns_zones=None)),
    vnet_context(facts(endpoints=(), subnets={})),
], ids=["open-registry", "network-not-read", "endpoints-unread", "zones-unread", "group-network-unread"])
def test_quiet_for_an_open_registry_and_where_the_network_could_not_be_read(ctx: Context) -> None:
    assert vnet_codes(ctx) == []


def test_default_action_deny_is_restricted_too() -> None:
    assert vnet_codes(vnet_context(facts(endpoints=()), default_action="Deny")) == [VNET_CODE]


# --- ACI_PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET ----------------------------------------------------


def pe_context(*, subnet: str = ACI_SUBNET, targets: tuple[str, ...] = (REGISTRY_ID,), error: str | None = DELEGATED,
               subnets: tuple[Subnet, ...] | None = (Subnet(ACI_SUBNET, (ACI,)), Subnet(PE_SUBNET))) -> Context:
    network = NetworkFacts(group_vnets=(ACI_VNET,), failed_endpoint=PrivateEndpoint(PE_ID, subnet, targets),
                           subnets={} if subnets is None else {ACI_VNET.lower(): subnets})
    return Context(
        signal=FailureSignal(PE_ID, SUB.rsplit("/", 1)[-1], "rg-net", "myacr-pe",
                             operation_name=PRIVATE_ENDPOINT_WRITE),
        error=ErrorInfo(error, f"Private endpoint {PE_ID} cannot be created as subnet {subnet} is delegated.")
        if error else None,
        network=network)


def test_registry_endpoint_in_the_aci_subnet_proposes_a_non_delegated_subnet() -> None:
    ctx = pe_context()
    assert is_image_pull_failure(ctx)
    found = only(ctx, PE_CODE)
    assert [f.code for f in run_checks(ctx)] == [PE_CODE]
    assert found.fixable is False
    assert found.evidence["subnetId"] == ACI_SUBNET and found.evidence["delegations"] == [ACI]
    assert found.evidence["registryIds"] == [REGISTRY_ID]
    assert found.evidence["nonDelegatedSubnets"] == [PE_SUBNET]
    (command,) = found.evidence["commands"]
    assert f"--subnet {PE_SUBNET} " in command and f"--private-connection-resource-id {REGISTRY_ID}" in command


def test_without_a_free_subnet_one_is_proposed() -> None:
    found = only(pe_context(subnets=(Subnet(ACI_SUBNET, (ACI,)),)), PE_CODE)
    create_subnet, create_endpoint = found.evidence["commands"]
    assert create_subnet.startswith("az network vnet subnet create")
    assert f"--subnet {ACI_VNET}/subnets/<new-subnet> " in create_endpoint


def test_a_free_subnet_of_a_peered_network_is_proposed_after_the_aci_networks_own() -> None:
    ctx = pe_context(subnets=(Subnet(ACI_SUBNET, (ACI,)),))
    network = dataclasses.replace(ctx.network or NetworkFacts(), peerings={ACI_VNET.lower(): (HUB,)}, subnets={
        ACI_VNET.lower(): (Subnet(ACI_SUBNET, (ACI,)),), HUB.lower(): (Subnet(f"{HUB}/subnets/pe"),)})
    found = only(dataclasses.replace(ctx, network=network), PE_CODE)
    assert found.evidence["nonDelegatedSubnets"] == [f"{HUB}/subnets/pe"]
    assert found.evidence["peeredNetworks"] == [HUB]
    (command,) = found.evidence["commands"]
    assert f"--subnet {HUB}/subnets/pe " in command


@pytest.mark.parametrize("ctx", [
    pe_context(subnets=(Subnet(ACI_SUBNET, ("Microsoft.Web/serverFarms",)), Subnet(PE_SUBNET))),
    pe_context(subnets=None),
    pe_context(subnets=(Subnet(ACI_SUBNET), Subnet(PE_SUBNET))),
], ids=["delegated-elsewhere", "subnet-unread", "not-delegated-as-read"])
def test_decided_from_the_subnet_as_read_not_from_the_error_text(ctx: Context) -> None:
    """A registry endpoint refused for another delegation, or a subnet that could not be read: UNKNOWN."""
    assert [f.code for f in run_checks(ctx)] == ["UNKNOWN"]


def test_an_endpoint_of_anything_else_is_not_an_image_pull_failure() -> None:
    storage = f"{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st"
    body = {"properties": {"subnet": {"id": ACI_SUBNET}, "privateLinkServiceConnections": [
        {"properties": {"privateLinkServiceId": storage, "groupIds": ["blob"]}}]}}
    read = _endpoint_from_body(PE_ID, body)
    assert read == PrivateEndpoint(PE_ID, ACI_SUBNET, ())
    ctx = pe_context(targets=read.targets)
    assert not is_image_pull_failure(ctx) and run_checks(ctx) == []


def test_the_gather_reads_registry_targets_from_automatic_and_manual_connections() -> None:
    body = {"properties": {"subnet": {"id": PE_SUBNET}, "manualPrivateLinkServiceConnections": [
        {"properties": {"privateLinkServiceId": REGISTRY_ID, "groupIds": ["registry"]}}]}}
    assert _endpoint_from_body(PE_ID, body) == PrivateEndpoint(PE_ID, PE_SUBNET, (REGISTRY_ID,))
    assert _endpoint_from_body(PE_ID, {"location": "eastus"}) is None


def test_another_private_endpoint_error_is_not_an_image_pull_failure() -> None:
    ctx = pe_context(error="PrivateEndpointAlreadyExists")
    assert not is_image_pull_failure(ctx) and run_checks(ctx) == []


def test_a_private_endpoint_write_whose_definition_is_unknown_is_not_ours() -> None:
    ctx = dataclasses.replace(pe_context(), network=NetworkFacts())
    assert not is_image_pull_failure(ctx)
