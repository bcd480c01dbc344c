"""Resource-group template deployments (``azure-mgmt-resource-deployments``: ``DeploymentsMgmtClient``).

What a caller can rely on:

- ``PUT .../providers/Microsoft.Resources/deployments/{name}`` evaluates the template at once
  (:mod:`sandbox.templates`: parameters, variables, the simple ARM functions it lists); a template
  the sandbox cannot evaluate is refused with ``400 InvalidTemplate``, as ARM refuses it in validation.
  The deployment then runs as an async operation (``deploymentSeconds``, default 0): each resource
  is written in template order; container groups go through the ACI surface
  (``containerinstance.create_in_deployment``: validate, then provision) with the template's
  ``apiVersion``; other types are stored as given.
- A failed resource fails the deployment with ARM's ``DeploymentFailed`` error, whose ``details``
  carry the resource's own error; the deployment operations list says which resource failed and why.
- Every resource write and the deployment itself are logged to the Activity Log and raise their
  Event Grid event under the deployment's correlation id.
- GET never returns the template (as in ARM); ``POST .../exportTemplate`` does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from .. import arm
from ..server import ArmError, Request, Response, may_read, route
from ..templates import PlannedResource, Scope, TemplateError, evaluate_template, parameter_type, refers_to

# The `name as name` imports re-export what tests/test_scenarios_reproduce.py plans a scenario's template with.
from ..templates import TemplateContext as TemplateContext
from ..templates import plan_resources as plan_resources
from ..templates import resolve_parameters as resolve_parameters
from ..world import World, iso
from . import containerinstance

DEPLOYMENT_TYPE = "Microsoft.Resources/deployments"
WRITE = "Microsoft.Resources/deployments/write"
READ = "Microsoft.Resources/deployments/read"
OPERATIONS_READ = "Microsoft.Resources/deployments/operations/read"
EXPORT = "Microsoft.Resources/deployments/exportTemplate/action"
CONTAINER_GROUPS = "Microsoft.ContainerInstance/containerGroups"
_BASE = "/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.Resources/deployments"
DEPLOYMENT_FAILED_MESSAGE = ("At least one resource deployment operation failed. Please list deployment operations "
                             "for details. Please see https://aka.ms/arm-deployment-operations for usage details.")

# ============================================================================================
# Running a deployment
# ============================================================================================

def _duration(seconds: float) -> str:
    return f"PT{max(seconds, 0.0):.7f}".rstrip("0").rstrip(".") + "S"


def _status_name(status: int) -> str:
    return {200: "OK", 201: "Created", 400: "BadRequest"}.get(status, str(status))


@dataclass
class DeploymentRun:
    """The async part of a deployment; ``world.start_operation`` calls it once when due."""

    req: Request
    deployment_id: str
    planned: list[PlannedResource]
    outputs: dict[str, Any]
    started: float
    body: Any
    existed_before: bool = False

    def __call__(self) -> dict[str, Any] | None:
        world = self.req.world
        operations: list[dict[str, Any]] = []
        blocked: list[str] = []
        errors: list[dict[str, Any]] = []
        succeeded: list[str] = []
        for res in self.planned:
            if any(refers_to(ref, failed) for ref in res.depends_on for failed in blocked):
                blocked.append(res.id)  # ARM never starts a resource whose dependency failed
                continue
            begun = world.now()
            existed = world.get(res.id) is not None
            error = self._write(res, existed)
            status = 400 if error else (200 if existed else 201)
            operations.append(self._operation(res, begun, status, error))
            if error:
                blocked.append(res.id)
                errors.append({"code": error.get("code", ""), "message": error.get("message", "")})
            else:
                succeeded.append(res.id)
        world.deployment_operations[self.deployment_id.lower()] = operations
        error = None
        if errors:
            error = {"code": "DeploymentFailed", "message": DEPLOYMENT_FAILED_MESSAGE, "details": errors}
        self._finish(succeeded, error)
        return error

    def _write(self, res: PlannedResource, existed: bool) -> dict[str, Any] | None:
        """PUT one resource as ARM would for the deployment; the resource's ARM error, or None."""
        world, body = self.req.world, copy.deepcopy(res.body)
        operation_name = f"{res.type}/write"
        if res.type.lower() == CONTAINER_GROUPS.lower():
            error = containerinstance.create_in_deployment(world, res.id, body, res.api_version)
        else:
            error = None
            world.put(_generic_resource(res))
        arm.record_write(self.req, resource_id=res.id, operation_name=operation_name,
                         status_code=400 if error else (200 if existed else 201), error=error,
                         request_body=redact(res.body), existed=existed)
        return error

    def _operation(self, res: PlannedResource, begun: float, status: int,
                   error: dict[str, Any] | None) -> dict[str, Any]:
        world = self.req.world
        op_id = uuid.uuid4().hex[:16].upper()
        props: dict[str, Any] = {
            "provisioningOperation": "Create",
            "provisioningState": "Failed" if error else "Succeeded",
            "timestamp": iso(world.now()),
            "duration": _duration(world.now() - begun),
            "serviceRequestId": str(uuid.uuid4()),
            "statusCode": _status_name(status),
            "targetResource": {"id": res.id, "resourceType": res.type, "resourceName": res.name,
                               "apiVersion": res.api_version},
        }
        if error:
            props["statusMessage"] = {"status": "Failed", "error": error}
        return {"id": f"{self.deployment_id}/operations/{op_id}", "operationId": op_id, "properties": props}

    def _finish(self, succeeded: list[str], error: dict[str, Any] | None) -> None:
        world = self.req.world
        deployment = world.get(self.deployment_id)
        if deployment is not None:
            props = deployment["properties"]
            props.update({"provisioningState": "Failed" if error else "Succeeded", "timestamp": iso(world.now()),
                          "duration": _duration(world.now() - self.started),
                          "outputResources": [{"id": rid} for rid in succeeded]})
            if error:
                props["error"] = error
            else:
                props["outputs"] = self.outputs
        arm.record_write(self.req, resource_id=self.deployment_id, operation_name=WRITE,
                         status_code=409 if error else 200, error=error, request_body=self.body,
                         existed=self.existed_before, started_logged=True)


def _generic_resource(res: PlannedResource) -> dict[str, Any]:
    """A resource type the sandbox has no surface for, stored as the template gave it."""
    stored = {"id": res.id, "name": res.name.rsplit("/", 1)[-1], "type": res.type, **copy.deepcopy(res.body)}
    props = stored.setdefault("properties", {})
    if isinstance(props, dict):
        props.setdefault("provisioningState", "Succeeded")
        at = res.id.lower().find("/providers/microsoft.authorization/roleassignments/")
        if at > 0:  # ARM fills in the scope of an assignment from where it is created
            props.setdefault("scope", res.id[:at])
    return stored


_SECRET_KEYS = {"password", "securevalue"}


def redact(value: Any, *, secure_parameters: list[str] | None = None) -> Any:
    """A copy for the Activity Log: no passwords, secure environment values or secure parameter values."""
    if isinstance(value, dict):
        out = {k: redact(v) for k, v in value.items() if k.lower() not in _SECRET_KEYS}
        params = (out.get("properties") or {}).get("parameters") if secure_parameters else None
        if isinstance(params, dict):
            secure = {name.lower() for name in secure_parameters or []}
            for name, given in params.items():
                if name.lower() in secure and isinstance(given, dict):
                    given.pop("value", None)
        return out
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _public(deployment: dict[str, Any]) -> dict[str, Any]:
    """The deployment as GET returns it: ARM never returns the template there."""
    out = copy.deepcopy(deployment)
    out.get("properties", {}).pop("template", None)
    return out


def _deployment_id(req: Request) -> str:
    return (f"/subscriptions/{req.params['sub'].lower()}/resourceGroups/{req.params['rg']}"
            f"/providers/{DEPLOYMENT_TYPE}/{req.params['name']}")


def _finish_if_due(world: World, deployment_id: str) -> None:
    """Complete a due deployment even when nobody polls it, as ARM runs it regardless."""
    with world.lock:
        due = [op.id for op in world.operations.values()
               if op.status == "InProgress" and isinstance(op.complete, DeploymentRun)
               and op.complete.deployment_id.lower() == deployment_id.lower()]
    for op_id in due:
        world.poll_operation(op_id)


def _existing(req: Request) -> dict[str, Any]:
    arm.require_resource_group(req)
    deployment_id = _deployment_id(req)
    _finish_if_due(req.world, deployment_id)
    found = req.world.get(deployment_id)
    if found is None or str(found.get("type", "")).lower() != DEPLOYMENT_TYPE.lower():
        raise ArmError(404, "DeploymentNotFound", f"Deployment '{req.params['name']}' could not be found.")
    return found


def _shown_parameters(template: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Parameters as GET shows them: typed, with secure values left out."""
    shown: dict[str, Any] = {}
    for name, value in values.items():
        kind = parameter_type(template, name)
        shown[name] = {"type": kind} if kind.startswith("Secure") else {"type": kind, "value": value}
    return shown


def _providers(planned: list[PlannedResource]) -> list[dict[str, Any]]:
    by_namespace: dict[str, dict[str, set[str]]] = {}
    for res in planned:
        namespace, _, rtype = res.type.partition("/")
        location = str(res.body.get("location", ""))
        by_namespace.setdefault(namespace, {}).setdefault(rtype, set()).update({location} if location else set())
    return [{"namespace": ns, "resourceTypes": [{"resourceType": t, "locations": sorted(locs)}
                                                for t, locs in types.items()]}
            for ns, types in by_namespace.items()]


def _authorize_resources(req: Request, planned: list[PlannedResource]) -> None:
    """ARM checks, before it starts, that the caller may write every resource in the template."""
    world, caller = req.world, req.caller or ""
    if not world.enforces(caller):
        return
    for res in planned:
        action = f"{res.type}/write"
        if not world.allows(caller, action, res.id):
            raise ArmError(403, "InvalidTemplateDeployment",
                           f"The template deployment failed with error: 'Authorization failed for template resource "
                           f"'{res.name}' of type '{res.type}'. The client '{caller}' with object id '{caller}' does "
                           f"not have permission to perform action '{action}' at scope '{res.id}'.'.")


# ============================================================================================
# Routes
# ============================================================================================

@route("PUT", _BASE + "/{name}", action=WRITE)
def put_deployment(req: Request) -> Response:
    arm.require_resource_group(req)
    world = req.world
    body = req.json()
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                       "'Required property 'properties' not found in JSON. Path '', line 1, position 2.'.")
    if not props.get("mode"):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                       "'Required property 'mode' not found in JSON. Path 'properties'.'.")
    template = props.get("template")
    if not isinstance(template, dict):
        what = "templateLink" if "templateLink" in props else "a missing template"
        raise ArmError(400, "InvalidTemplate", f"The sandbox deploys only inline templates ('properties.template'); "
                       f"got {what}.")
    deployment_id = _deployment_id(req)
    _finish_if_due(world, deployment_id)
    previous = world.get(deployment_id)
    if previous is not None and previous["properties"].get("provisioningState") in ("Accepted", "Running"):
        raise ArmError(409, "DeploymentActive", f"The deployment with resource id '{deployment_id}' cannot be saved, "
                       "because this would overwrite an existing deployment which is still active.")
    group = world.resource_group(req.params["sub"], req.params["rg"]) or {}
    scope = Scope(req.params["sub"].lower(), world.tenant_id, {"name": req.params["rg"], **group})
    try:
        evaluated = evaluate_template(template, props.get("parameters") or {}, scope)
    except TemplateError as exc:
        raise ArmError(400, "InvalidTemplate", str(exc)) from None
    planned, outputs = evaluated.resources, evaluated.outputs
    _authorize_resources(req, planned)
    now = world.now()
    canonical = json.dumps(template, sort_keys=True).encode()
    deployment: dict[str, Any] = {
        "id": deployment_id, "name": req.params["name"], "type": DEPLOYMENT_TYPE,
        "properties": {
            "templateHash": str(int(hashlib.sha256(canonical).hexdigest()[:15], 16)),
            "parameters": _shown_parameters(template, evaluated.parameters),
            "mode": props["mode"], "provisioningState": "Running", "timestamp": iso(now), "duration": "PT0S",
            "correlationId": req.correlation_id, "providers": _providers(planned), "dependencies": [],
            "template": copy.deepcopy(template),
        },
    }
    if isinstance(body.get("tags"), dict):
        deployment["tags"] = body["tags"]
    world.put(deployment)
    world.deployment_operations[deployment_id.lower()] = []
    logged_body = redact(body, secure_parameters=[n for n, p in deployment["properties"]["parameters"].items()
                                                  if "value" not in p])
    arm.log_started(req, resource_id=deployment_id, operation_name=WRITE, request_body=logged_body)
    run = DeploymentRun(req, deployment_id, planned, outputs, now, logged_body,
                        existed_before=previous is not None)
    op = world.start_operation(run, delay=world.knob("deploymentSeconds", 0.0))
    return Response(200 if previous else 201, _public(deployment), req.async_operation(op.id))


@route("GET", _BASE + "/{name}", action=READ)
def get_deployment(req: Request) -> Response:
    return Response(200, _public(_existing(req)))


@route("GET", _BASE, action=READ)
def list_deployments(req: Request) -> Response:
    arm.require_resource_group(req)
    world = req.world
    scope = f"/subscriptions/{req.params['sub']}/resourceGroups/{req.params['rg']}"
    for deployment in world.of_type(DEPLOYMENT_TYPE, scope):
        _finish_if_due(world, deployment["id"])
    items = [_public(d) for d in world.of_type(DEPLOYMENT_TYPE, scope) if may_read(req, d["id"], READ)]
    wanted = re.fullmatch(r"\s*provisioningState\s+eq\s+'([^']*)'\s*", req.query.get("$filter", "") or "", re.I)
    if wanted:
        items = [d for d in items if str(d["properties"].get("provisioningState", "")).lower()
                 == wanted.group(1).lower()]
    elif req.query.get("$filter"):
        raise ArmError(400, "InvalidFilter", "Only \"provisioningState eq '<state>'\" is supported in $filter.")
    items.sort(key=lambda d: str(d["properties"].get("timestamp", "")), reverse=True)
    if req.query.get("$top", "").isdigit():
        items = items[:int(req.query["$top"])]
    return Response(200, arm.page(items))


def _list_operations(req: Request) -> Response:
    deployment = _existing(req)
    return Response(200, arm.page(copy.deepcopy(req.world.deployment_operations.get(deployment["id"].lower(), []))))


# The SDK lists operations without '/providers/Microsoft.Resources' (the REST spec's path); ARM serves both.
route("GET", "/subscriptions/{sub}/resourcegroups/{rg}/deployments/{name}/operations",
      action=OPERATIONS_READ)(_list_operations)
route("GET", _BASE + "/{name}/operations", action=OPERATIONS_READ)(_list_operations)


@route("POST", _BASE + "/{name}/exportTemplate", action=EXPORT)
def export_template(req: Request) -> Response:
    deployment = _existing(req)
    template = deployment.get("properties", {}).get("template")
    if not isinstance(template, dict):
        raise ArmError(404, "DeploymentTemplateNotFound",
                       f"The deployment '{req.params['name']}' has no stored template to export.")
    return Response(200, {"template": copy.deepcopy(template)})
