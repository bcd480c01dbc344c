"""Subscriptions and resource groups (``azure-mgmt-resource``)."""

from __future__ import annotations

from ..arm import page, record_write
from ..server import ArmError, Request, Response, may_read, route


@route("GET", "/subscriptions/{sub}", action="Microsoft.Resources/subscriptions/read")
def get_subscription(req: Request) -> Response:
    sub = req.params["sub"].lower()
    return Response(
        200,
        {
            "id": f"/subscriptions/{sub}",
            "subscriptionId": sub,
            "tenantId": req.world.tenant_id,
            "displayName": f"sandbox-{sub[:8]}",
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
            "authorizationSource": "RoleBased",
        },
    )


@route("GET", "/subscriptions")
def list_subscriptions(req: Request) -> Response:
    items = [
        get_subscription(_with(req, s)).body
        for s in req.world.subscriptions
        if may_read(req, f"/subscriptions/{s}", "Microsoft.Resources/subscriptions/read")
    ]
    return Response(200, page(items))


def _with(req: Request, sub: str) -> Request:
    req.params = {"sub": sub}
    return req


@route(
    "GET", "/subscriptions/{sub}/resourcegroups/{rg}", action="Microsoft.Resources/subscriptions/resourceGroups/read"
)
def get_group(req: Request) -> Response:
    group = req.world.resource_group(req.params["sub"], req.params["rg"])
    if group is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{req.params['rg']}' could not be found.")
    return Response(200, group)


@route(
    "HEAD", "/subscriptions/{sub}/resourcegroups/{rg}", action="Microsoft.Resources/subscriptions/resourceGroups/read"
)
def head_group(req: Request) -> Response:
    found = req.world.resource_group(req.params["sub"], req.params["rg"]) is not None
    return Response(204 if found else 404)


@route(
    "PUT", "/subscriptions/{sub}/resourcegroups/{rg}", action="Microsoft.Resources/subscriptions/resourceGroups/write"
)
def put_group(req: Request) -> Response:
    body = req.json() or {}
    if not body.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    rid = f"/subscriptions/{req.params['sub'].lower()}/resourceGroups/{req.params['rg']}"
    existing = req.world.get(rid)
    group = {
        "id": rid,
        "name": req.params["rg"],
        "type": "Microsoft.Resources/resourceGroups",
        "location": body["location"],
        "tags": body.get("tags") or {},
        "properties": {"provisioningState": "Succeeded"},
    }
    req.world.put(group)
    record_write(
        req,
        resource_id=rid,
        operation_name="Microsoft.Resources/subscriptions/resourceGroups/write",
        status_code=200 if existing else 201,
        existed=existing is not None,
    )
    return Response(200 if existing else 201, group)


@route("GET", "/subscriptions/{sub}/resourcegroups", action="Microsoft.Resources/subscriptions/resourceGroups/read")
def list_groups(req: Request) -> Response:
    items = [
        g
        for g in req.world.of_type("Microsoft.Resources/resourceGroups", f"/subscriptions/{req.params['sub']}")
        if may_read(req, g["id"], "Microsoft.Resources/subscriptions/resourceGroups/read")
    ]
    return Response(200, page(items))
