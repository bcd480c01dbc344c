"""Private networking (``Microsoft.Network``): virtual networks, private endpoints, private DNS zones.

Shapes and paths from azure-rest-api-specs:
``specification/network/resource-manager/Microsoft.Network/stable/2024-05-01/virtualNetwork.json``
(subnets with ``delegations`` and ``virtualNetworkPeerings`` inline in the virtual network),
``…/privateEndpoint.json`` (``subnet.id``, ``privateLinkServiceConnections``), and
``specification/privatedns/resource-manager/Microsoft.Network/PrivateDns/`` 2024-06-01
(zones, and ``virtualNetworkLinks`` as the zone's child resources).

- GET a virtual network, one of its subnets; GET and list private endpoints, private DNS zones
  and a zone's virtual network links (lists show what the caller may read).
- PUT a private endpoint: one in a subnet delegated to any service fails as Azure does, 400
  ``PrivateEndpointCreationNotAllowedAsSubnetIsDelegated`` "Private endpoint … cannot be created
  as subnet … is delegated." (MicrosoftDocs/SupportArticles-docs,
  ``support/azure/private-link/troubleshoot-private-endpoint-creation-failed.md``, ms.date
  2026-06-12, commit b13e218414a383ca159bfd2605c6efcc7ee81219), with the Activity Log failure and
  the ``ResourceWriteFailure`` event. A created endpoint is ``Succeeded`` at once and its registry
  lists the connection (``sandbox/network.py``).
"""

from __future__ import annotations

import copy
from typing import Any

from ..arm import not_found, page, record_write, require_resource_group, resource_id_of
from ..network import DNS_LINK_TYPE, DNS_ZONE_TYPE, PRIVATE_ENDPOINT_TYPE, VNET_TYPE, delegations, subnet
from ..server import ArmError, Request, Response, may_read, route

NETWORK_API_VERSION = "2024-05-01"
PRIVATE_DNS_API_VERSION = "2024-06-01"
VNET_READ = f"{VNET_TYPE}/read"
SUBNET_READ = f"{VNET_TYPE}/subnets/read"
PE_READ = f"{PRIVATE_ENDPOINT_TYPE}/read"
PE_WRITE = f"{PRIVATE_ENDPOINT_TYPE}/write"
ZONE_READ = f"{DNS_ZONE_TYPE}/read"
LINK_READ = f"{DNS_LINK_TYPE}/read"
_RG = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network"


def _view(resource: dict[str, Any]) -> dict[str, Any]:
    """The stored resource with what ARM always returns (name, provisioning state)."""
    out = copy.deepcopy(resource)
    out.setdefault("name", out["id"].rstrip("/").rsplit("/", 1)[-1])
    out.setdefault("properties", {}).setdefault("provisioningState", "Succeeded")
    return out


def _get(req: Request, resource_id: str) -> Response:
    require_resource_group(req)
    found = req.world.get(resource_id)
    if found is None:
        raise not_found(resource_id)
    return Response(200, _view(found))


def _listed(req: Request, resource_type: str, scope: str, action: str) -> Response:
    items = [_view(r) for r in req.world.of_type(resource_type, scope) if may_read(req, r["id"], action)]
    return Response(200, page(items))


@route("GET", _RG + "/virtualNetworks/{name}", action=VNET_READ)
def get_virtual_network(req: Request) -> Response:
    return _get(req, resource_id_of(req))


@route("GET", _RG + "/virtualNetworks/{name}/subnets/{subnet}", action=SUBNET_READ)
def get_subnet(req: Request) -> Response:
    require_resource_group(req)
    found = subnet(req.world, resource_id_of(req))
    if found is None:
        raise not_found(resource_id_of(req))
    return Response(200, found)


@route("GET", _RG + "/privateEndpoints/{name}", action=PE_READ)
def get_private_endpoint(req: Request) -> Response:
    return _get(req, resource_id_of(req))


# Lists carry no route action: ARM answers them for any caller and filters what each may read.
@route("GET", _RG + "/privateEndpoints")
def list_private_endpoints(req: Request) -> Response:
    require_resource_group(req)
    return _listed(req, PRIVATE_ENDPOINT_TYPE, resource_id_of(req).rsplit("/providers/", 1)[0], PE_READ)


@route("GET", "/subscriptions/{sub}/providers/Microsoft.Network/privateEndpoints")
def list_private_endpoints_in_subscription(req: Request) -> Response:
    return _listed(req, PRIVATE_ENDPOINT_TYPE, f"/subscriptions/{req.params['sub']}", PE_READ)


@route("GET", _RG + "/privateDnsZones/{name}", action=ZONE_READ)
def get_private_dns_zone(req: Request) -> Response:
    return _get(req, resource_id_of(req))


@route("GET", "/subscriptions/{sub}/providers/Microsoft.Network/privateDnsZones")
def list_private_dns_zones(req: Request) -> Response:
    return _listed(req, DNS_ZONE_TYPE, f"/subscriptions/{req.params['sub']}", ZONE_READ)


@route("GET", _RG + "/privateDnsZones/{name}/virtualNetworkLinks/{link}", action=LINK_READ)
def get_virtual_network_link(req: Request) -> Response:
    return _get(req, resource_id_of(req))


@route("GET", _RG + "/privateDnsZones/{name}/virtualNetworkLinks", action=LINK_READ)
def list_virtual_network_links(req: Request) -> Response:
    require_resource_group(req)
    zone = resource_id_of(req).rsplit("/", 1)[0]
    if req.world.get(zone) is None:
        raise not_found(zone)
    return _listed(req, DNS_LINK_TYPE, zone, LINK_READ)


def _subnet_id(body: Any) -> str:
    subnet_ref = ((body.get("properties") or {}).get("subnet") or {}) if isinstance(body, dict) else {}
    return str(subnet_ref.get("id") or "") if isinstance(subnet_ref, dict) else ""


def _refusal(req: Request, rid: str, body: Any) -> ArmError | None:
    if not isinstance(body, dict) or not body.get("location"):
        return ArmError(400, "LocationRequired", "The location property is required for this definition.")
    subnet_id = _subnet_id(body)
    found = subnet(req.world, subnet_id) if subnet_id else None
    if found is None:
        return ArmError(400, "InvalidResourceReference",
                        f"Resource {subnet_id or 'subnet'} referenced by resource {rid} was not found. Please make "
                        "sure that the referenced resource exists, and that both resources are in the same region.")
    if any(delegations(found)):
        return ArmError(400, "PrivateEndpointCreationNotAllowedAsSubnetIsDelegated",
                        f"Private endpoint {rid} cannot be created as subnet {subnet_id} is delegated.")
    return None


@route("PUT", _RG + "/privateEndpoints/{name}", action=PE_WRITE)
def put_private_endpoint(req: Request) -> Response:
    require_resource_group(req)
    world = req.world
    rid = f"/subscriptions/{req.params['sub'].lower()}/resourceGroups/{req.params['rg']}/providers/" \
          f"{PRIVATE_ENDPOINT_TYPE}/{req.params['name']}"
    body = req.json()
    existing = world.get(rid)
    refusal = _refusal(req, rid, body)
    if refusal is not None:
        record_write(req, resource_id=rid, operation_name=PE_WRITE, status_code=refusal.status,
                     error={"code": refusal.code, "message": refusal.message}, request_body=body,
                     existed=existing is not None)
        raise refusal
    props = copy.deepcopy(body.get("properties") or {})
    for key in ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections"):
        for conn in props.get(key) or []:
            conn.setdefault("properties", {})["provisioningState"] = "Succeeded"
            conn["properties"].setdefault("privateLinkServiceConnectionState", {
                "status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"})
    props["provisioningState"] = "Succeeded"
    endpoint = {"id": existing["id"] if existing else rid, "name": req.params["name"], "type": PRIVATE_ENDPOINT_TYPE,
                "location": body["location"], "tags": dict(body.get("tags") or {}), "properties": props}
    world.put(endpoint)
    status = 200 if existing else 201
    record_write(req, resource_id=endpoint["id"], operation_name=PE_WRITE, status_code=status,
                 request_body=body, existed=existing is not None)
    return Response(status, _view(endpoint))
