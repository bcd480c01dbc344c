"""Private networking as ACI's image pull meets it: which registry private endpoints a virtual
network can reach, and whether the registry's name resolves to them there.

The rule (ACI article, MicrosoftDocs/azure-compute-docs,
``articles/container-instances/using-azure-container-registry-mi.md``, ms.date 2026-07-25, and the
troubleshooting guide, MicrosoftDocs/SupportArticles-docs,
``support/azure/azure-container-instances/management/acr-image-pull-failures-managed-identity.md``,
ms.date 2026-09-09): a VNet-deployed container group pulls from a network-restricted registry
through the registry's private endpoint, so one must sit in the group's virtual network or a
peered one, and the ``privatelink.azurecr.io`` private DNS zone must be linked to the group's
network (else the login server resolves to the public address the registry refuses).

Resources are read from the World in ARM's shapes (azure-rest-api-specs,
``specification/network/resource-manager/Microsoft.Network/stable/2024-05-01/virtualNetwork.json``
and ``privateEndpoint.json``; ``specification/privatedns/resource-manager/Microsoft.Network/
PrivateDns/examples/2024-06-01/VirtualNetworkLinkList.json``): subnets and peerings inline in the
virtual network, links as their own resources under the zone.
"""

from __future__ import annotations

from typing import Any

from .world import World

VNET_TYPE = "Microsoft.Network/virtualNetworks"
PRIVATE_ENDPOINT_TYPE = "Microsoft.Network/privateEndpoints"
DNS_ZONE_TYPE = "Microsoft.Network/privateDnsZones"
DNS_LINK_TYPE = "Microsoft.Network/privateDnsZones/virtualNetworkLinks"
ACR_DNS_ZONE = "privatelink.azurecr.io"
ACI_DELEGATION = "Microsoft.ContainerInstance/containerGroups"
REGISTRY_GROUP_ID = "registry"


def vnet_of(subnet_id: str) -> str:
    """The virtual network id of a subnet id (``…/virtualNetworks/v/subnets/s`` → ``…/virtualNetworks/v``)."""
    head, sep, _ = subnet_id.rstrip("/").rpartition("/subnets/")
    return head if sep else subnet_id.rstrip("/")


def subnet(world: World, subnet_id: str) -> dict[str, Any] | None:
    """The subnet as its virtual network holds it, or None."""
    vnet = world.get(vnet_of(subnet_id))
    name = subnet_id.rstrip("/").rsplit("/", 1)[-1].lower()
    for item in ((vnet or {}).get("properties") or {}).get("subnets") or []:
        if str(item.get("name", "")).lower() == name:
            return dict(item)
    return None


def delegations(subnet_resource: dict[str, Any]) -> list[str]:
    """The service names a subnet is delegated to."""
    items = (subnet_resource.get("properties") or {}).get("delegations") or []
    return [str((d.get("properties") or {}).get("serviceName", "")) for d in items]


def connections(endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """A private endpoint's connections, automatic and manual."""
    props = endpoint.get("properties") or {}
    return list(props.get("privateLinkServiceConnections") or []) + list(
        props.get("manualPrivateLinkServiceConnections") or [])


def targets(endpoint: dict[str, Any], resource_id: str) -> bool:
    """Whether the endpoint connects to ``resource_id`` for the registry sub-resource."""
    for conn in connections(endpoint):
        props = conn.get("properties") or {}
        group_ids = [str(g).lower() for g in props.get("groupIds") or [REGISTRY_GROUP_ID]]
        if str(props.get("privateLinkServiceId", "")).lower() == resource_id.lower() and REGISTRY_GROUP_ID in group_ids:
            return True
    return False


def endpoints_of(world: World, registry_id: str) -> list[dict[str, Any]]:
    """The private endpoints that target the registry."""
    return [e for e in world.of_type(PRIVATE_ENDPOINT_TYPE) if targets(e, registry_id)]


def peered(world: World, vnet_id: str) -> set[str]:
    """Virtual networks (lower-cased ids) with a ``Connected`` peering to ``vnet_id``, either side listing it."""
    wanted = vnet_id.lower()
    out: set[str] = set()
    for vnet in world.of_type(VNET_TYPE):
        for peering in (vnet.get("properties") or {}).get("virtualNetworkPeerings") or []:
            props = peering.get("properties") or {}
            remote = str((props.get("remoteVirtualNetwork") or {}).get("id", "")).lower()
            if str(props.get("peeringState", "")).lower() != "connected":
                continue
            if vnet["id"].lower() == wanted and remote:
                out.add(remote)
            elif remote == wanted:
                out.add(vnet["id"].lower())
    return out


def dns_linked(world: World, vnet_id: str) -> bool:
    """Whether a ``privatelink.azurecr.io`` zone is linked to ``vnet_id``."""
    zones = [z["id"].lower() for z in world.of_type(DNS_ZONE_TYPE)
             if z["id"].rstrip("/").rsplit("/", 1)[-1].lower() == ACR_DNS_ZONE]
    for link in world.of_type(DNS_LINK_TYPE):
        zone = link["id"].lower().rsplit("/virtualnetworklinks/", 1)[0]
        linked = str(((link.get("properties") or {}).get("virtualNetwork") or {}).get("id", "")).lower()
        if zone in zones and linked == vnet_id.lower():
            return True
    return False


def private_path(world: World, subnet_ids: list[str], registry_id: str) -> bool:
    """Whether a group in ``subnet_ids`` reaches the registry privately: one of its endpoints in
    the group's virtual network or a peered one, and the registry's zone linked to the group's."""
    for vnet_id in dict.fromkeys(vnet_of(s).lower() for s in subnet_ids):
        reachable = {vnet_id} | peered(world, vnet_id)
        placed = {vnet_of(str(((e.get("properties") or {}).get("subnet") or {}).get("id", ""))).lower()
                  for e in endpoints_of(world, registry_id)}
        if not (reachable & placed and dns_linked(world, vnet_id)):
            return False
    return True


def registry_connections(world: World, registry_id: str) -> list[dict[str, Any]]:
    """The registry's ``privateEndpointConnections`` for the endpoints that target it, as ACR lists them."""
    out = []
    for endpoint in endpoints_of(world, registry_id):
        name = endpoint["id"].rstrip("/").rsplit("/", 1)[-1]
        out.append({
            "id": f"{registry_id}/privateEndpointConnections/{name}",
            "name": name,
            "type": "Microsoft.ContainerRegistry/registries/privateEndpointConnections",
            "properties": {
                "privateEndpoint": {"id": endpoint["id"]},
                "privateLinkServiceConnectionState": {"status": "Approved", "description": "Auto-Approved",
                                                      "actionsRequired": "None"},
                "provisioningState": "Succeeded",
            },
        })
    return out
