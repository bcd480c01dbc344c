"""User-assigned managed identities (``azure-mgmt-msi``): GET and list."""

from __future__ import annotations

from ..arm import not_found, page, require_resource_group, resource_id_of
from ..server import Request, Response, may_read, route

_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
_READ = "Microsoft.ManagedIdentity/userAssignedIdentities/read"
_BASE = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"


@route("GET", _BASE + "/{name}", action=_READ)
def get_identity(req: Request) -> Response:
    require_resource_group(req)
    found = req.world.get(resource_id_of(req))
    if found is None:
        raise not_found(resource_id_of(req))
    return Response(200, found)


@route("GET", _BASE, action=_READ)
def list_in_group(req: Request) -> Response:
    require_resource_group(req)
    scope = f"/subscriptions/{req.params['sub']}/resourceGroups/{req.params['rg']}"
    return Response(200, page([i for i in req.world.of_type(_TYPE, scope) if may_read(req, i["id"], _READ)]))


@route("GET", "/subscriptions/{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities", action=_READ)
def list_in_subscription(req: Request) -> Response:
    scope = f"/subscriptions/{req.params['sub']}"
    return Response(200, page([i for i in req.world.of_type(_TYPE, scope) if may_read(req, i["id"], _READ)]))
