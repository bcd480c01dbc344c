"""Private networking for test worlds, in ARM's shapes (virtualNetwork.json, privateEndpoint.json,
privatedns 2024-06-01): virtual networks with subnets and peerings inline, private endpoints, the
``privatelink.azurecr.io`` zone and its virtual network links."""

from __future__ import annotations

from typing import Any

from .worlds import REGISTRY_ID, RG_ID

NET = f"{RG_ID}/providers/Microsoft.Network"
ZONE_ID = f"{NET}/privateDnsZones/privatelink.azurecr.io"
ACI_SUBNET = f"{NET}/virtualNetworks/aci-vnet/subnets/aci-subnet"


def vnet_id(name: str) -> str:
    return f"{NET}/virtualNetworks/{name}"


def subnet_id(vnet: str, name: str) -> str:
    return f"{vnet_id(vnet)}/subnets/{name}"


def vnet(name: str, subnets: dict[str, str | None], peerings: dict[str, str] | None = None) -> dict[str, Any]:
    """``subnets``: name → the service it is delegated to (or None); ``peerings``: remote network → peeringState."""
    vid = vnet_id(name)
    return {
        "id": vid, "name": name, "type": "Microsoft.Network/virtualNetworks", "location": "eastus", "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
            "subnets": [{"id": f"{vid}/subnets/{s}", "name": s, "properties": {
                "addressPrefix": "10.0.0.0/24",
                "delegations": [{"id": f"{vid}/subnets/{s}/delegations/d", "name": "d",
                                 "properties": {"serviceName": service}}] if service else []}}
                for s, service in subnets.items()],
            "virtualNetworkPeerings": [{"id": f"{vid}/virtualNetworkPeerings/to-{remote}", "name": f"to-{remote}",
                                        "properties": {"peeringState": state,
                                                       "remoteVirtualNetwork": {"id": vnet_id(remote)}}}
                                       for remote, state in (peerings or {}).items()],
        },
    }


def endpoint(name: str, subnet: str, target: str = REGISTRY_ID, group_id: str = "registry") -> dict[str, Any]:
    return {
        "id": f"{NET}/privateEndpoints/{name}", "name": name, "type": "Microsoft.Network/privateEndpoints",
        "location": "eastus", "tags": {},
        "properties": {"subnet": {"id": subnet}, "privateLinkServiceConnections": [
            {"name": f"{name}-connection", "properties": {"privateLinkServiceId": target, "groupIds": [group_id]}}]},
    }


def zone(name: str = "privatelink.azurecr.io") -> dict[str, Any]:
    return {"id": f"{NET}/privateDnsZones/{name}", "name": name, "type": "Microsoft.Network/privateDnsZones",
            "location": "global", "tags": {}, "properties": {}}


def link(vnet_name: str, zone_name: str = "privatelink.azurecr.io") -> dict[str, Any]:
    zid = f"{NET}/privateDnsZones/{zone_name}"
    return {"id": f"{zid}/virtualNetworkLinks/{vnet_name}-link", "name": f"{vnet_name}-link",
            "type": "Microsoft.Network/privateDnsZones/virtualNetworkLinks", "location": "global", "tags": {},
            "properties": {"registrationEnabled": False, "virtualNetwork": {"id": vnet_id(vnet_name)}}}
