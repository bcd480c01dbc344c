"""What ARM does around every resource write, shared by the surfaces.

- Activity Log: a ``BeginRequest`` (Started) entry, then an ``EndRequest`` entry that
  succeeded or failed, with ``properties.statusCode`` and, for failures, the JSON string
  ``properties.statusMessage``.
- Event Grid: the ``ResourceWrite*``/``ResourceDelete*`` event.
- Errors in ARM's words for missing resources and groups.
"""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from typing import Any

from . import eventgrid
from .server import ArmError, Request
from .world import iso, resource_group_of, resource_type_of, subscription_of


def _status_name(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return str(status)


def _loc(value: str) -> dict[str, str]:
    return {"value": value, "localizedValue": value}


def activity_record(req: Request, *, resource_id: str, operation_name: str, status: str, status_code: int | None,
                    error: dict[str, Any] | None = None, request_body: Any = None,
                    operation_id: str | None = None) -> dict[str, Any]:
    world = req.world
    now = world.now()
    event_id = str(uuid.uuid4())
    rtype = resource_type_of(resource_id)
    properties: dict[str, Any] = {
        "eventCategory": "Administrative",
        "entity": resource_id,
        "message": operation_name,
        "hierarchy": f"{world.tenant_id}/{subscription_of(resource_id)}",
    }
    if status_code is not None:
        properties["statusCode"] = _status_name(status_code)
    if error is not None:
        properties["statusMessage"] = json.dumps({"status": "Failed", "error": error})
    if request_body is not None and world.behaviour.get("activityLogRequestBody", True):
        properties["requestbody"] = json.dumps(request_body)
    started = status == "Started"
    return {
        "authorization": {"action": operation_name, "scope": resource_id},
        "caller": req.caller,
        "channels": "Operation",
        "claims": eventgrid.event_claims(req.claims),
        "correlationId": req.correlation_id,
        "description": "",
        "eventDataId": event_id,
        "eventName": _loc("BeginRequest" if started else "EndRequest"),
        "category": _loc("Administrative"),
        "httpRequest": {"clientRequestId": req.header("x-ms-client-request-id") or str(uuid.uuid4()),
                        "clientIpAddress": "127.0.0.1", "method": req.method},
        "id": f"{resource_id}/events/{event_id}/ticks/{int(now * 10_000_000)}",
        "level": "Error" if status == "Failed" else "Informational",
        "resourceGroupName": resource_group_of(resource_id) or "",
        "resourceProviderName": _loc(rtype.split("/", 1)[0]),
        "resourceId": resource_id,
        "resourceType": _loc(rtype),
        "operationId": operation_id or req.correlation_id,
        "operationName": _loc(operation_name),
        "properties": properties,
        "status": _loc(status),
        "subStatus": _loc("" if status_code is None else _status_name(status_code)),
        "eventTimestamp": iso(now),
        "submissionTimestamp": iso(now + world.knob("activityLogLagSeconds", 0.0)),
        "subscriptionId": subscription_of(resource_id),
        "tenantId": world.tenant_id,
    }


def record_write(req: Request, *, resource_id: str, operation_name: str, status_code: int,
                 error: dict[str, Any] | None = None, request_body: Any = None, existed: bool = False,
                 delete: bool = False, started_logged: bool = False, emit_event: bool = True) -> None:
    """Log the end of a write (and its start, unless already logged) and raise its event."""
    world = req.world
    if not started_logged:
        log_started(req, resource_id=resource_id, operation_name=operation_name, request_body=request_body)
    failed = error is not None or status_code >= 400
    world.log_activity(activity_record(
        req, resource_id=resource_id, operation_name=operation_name, status="Failed" if failed else "Succeeded",
        status_code=status_code, error=error, request_body=request_body if failed else None))
    if emit_event:
        eventgrid.emit_write(world, resource_id=resource_id, operation_name=operation_name, succeeded=not failed,
                             correlation_id=req.correlation_id, claims=req.claims, existed=existed,
                             method=req.method, client_request_id=req.header("x-ms-client-request-id"),
                             delete=delete, api_version=req.api_version or None)


def log_started(req: Request, *, resource_id: str, operation_name: str, request_body: Any = None) -> None:
    req.world.log_activity(activity_record(req, resource_id=resource_id, operation_name=operation_name,
                                           status="Started", status_code=None, request_body=request_body))


def require_resource_group(req: Request) -> None:
    sub, rg = req.params.get("sub"), req.params.get("rg")
    if sub and rg and req.world.resource_group(sub, rg) is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")


def not_found(resource_id: str) -> ArmError:
    rtype = resource_type_of(resource_id)
    name = resource_id.rstrip("/").rsplit("/", 1)[-1]
    rg = resource_group_of(resource_id) or ""
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{rtype}/{name}' under resource group '{rg}' was not found. "
                    "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def resource_id_of(req: Request) -> str:
    """The request path, which for resource routes is the resource id."""
    return req.path.rstrip("/")


def data_view(resource: dict[str, Any], resource_type: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """A scenario resource held as data (a lock, a deny assignment) as ARM answers it: its ``id``,
    ``name`` (the id's last segment where the scenario gave none), ``type``, and ``properties``
    with every property the spec's output shape has, ``defaults`` where the scenario set none."""
    name = str(resource.get("name") or str(resource["id"]).rstrip("/").rsplit("/", 1)[-1])
    return {"id": resource["id"], "name": name, "type": resource_type,
            "properties": {**defaults, **(resource.get("properties") or {})}}


def page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"value": items}
