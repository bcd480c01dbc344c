"""Azure Policy as data (api-version 2023-04-01): assignments and definitions, read-only here.

- ``GET {scope}/providers/Microsoft.Authorization/policyAssignments``: those at, above and below
  the scope, or with ``$filter=atScope()`` those that apply to it (at it or above), as
  PolicyAssignments_ListForResource / …ForResourceGroup / PolicyAssignments_List do
  (azure-rest-api-specs ``specification/resources/resource-manager/Microsoft.Authorization/stable/
  2023-04-01/policyAssignments.json``). A scenario's assignment without ``properties.scope`` gets
  the scope its id names.
- ``GET /providers/Microsoft.Authorization/policyDefinitions/{name}`` (built-in, readable by any
  caller) and ``GET /subscriptions/{sub}/providers/Microsoft.Authorization/policyDefinitions/{name}``
  (custom ones, from the scenario's ``resources``) (``policyDefinitions.json``).

The built-ins known here are ``sandbox/policies.py``'s. ``Deny`` is enforced on writes
(``sandbox/blockers.py``); the other effects are not applied.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import rbac
from ..arm import page
from ..policies import ASSIGNMENT_TYPE, BUILTIN_DEFINITIONS, DEFINITION_TYPE
from ..server import ArmError, Request, Response, route

_ASSIGNMENTS = f"/providers/{ASSIGNMENT_TYPE}"
_DEFINITIONS = f"/providers/{DEFINITION_TYPE}"
_ASSIGNMENT_DEFAULTS: dict[str, Any] = {
    "displayName": None, "description": None, "metadata": {}, "parameters": {}, "notScopes": [],
    "enforcementMode": "Default", "nonComplianceMessages": [],
}


def _assignment_scope(assignment: dict[str, Any]) -> str:
    scope = (assignment.get("properties") or {}).get("scope")
    if scope:
        return str(scope)
    assignment_id = str(assignment["id"])
    return assignment_id[:assignment_id.lower().rfind(_ASSIGNMENTS.lower())]


def _assignment_view(assignment: dict[str, Any]) -> dict[str, Any]:
    view = copy.deepcopy(assignment)
    view.setdefault("name", str(assignment["id"]).rsplit("/", 1)[-1])
    view["type"] = ASSIGNMENT_TYPE
    view["properties"] = {**_ASSIGNMENT_DEFAULTS, **(assignment.get("properties") or {}),
                          "scope": _assignment_scope(assignment)}
    return view


@route("GET", "{scope*}" + _ASSIGNMENTS, action=f"{ASSIGNMENT_TYPE}/read")
def list_policy_assignments(req: Request) -> Response:
    scope = "/" + req.params.get("scope", "").strip("/")
    flt = req.query.get("$filter", "").strip()
    if flt not in ("", "atScope()"):
        # only the filter the product uses is modelled; the others are answered as unsupported
        raise ArmError(400, "InvalidFilter", f"The filter '{flt}' is not supported by the sandbox.")
    found = []
    for assignment in req.world.of_type(ASSIGNMENT_TYPE):
        at = _assignment_scope(assignment)
        if rbac.scope_contains(at, scope) or (not flt and rbac.scope_contains(scope, at)):
            found.append(_assignment_view(assignment))
    return Response(200, page(found))


def _definition_not_found(name: str) -> ArmError:
    return ArmError(404, "PolicyDefinitionNotFound", f"The policy definition '{name}' could not be found.")


@route("GET", _DEFINITIONS + "/{name}")
def get_builtin_definition(req: Request) -> Response:
    found = BUILTIN_DEFINITIONS.get(req.params["name"].lower())
    if found is None:
        raise _definition_not_found(req.params["name"])
    return Response(200, copy.deepcopy(found))


@route("GET", "/subscriptions/{sub}" + _DEFINITIONS + "/{name}", action=f"{DEFINITION_TYPE}/read")
def get_custom_definition(req: Request) -> Response:
    found = req.world.get(req.path)
    if found is None:
        raise _definition_not_found(req.params["name"])
    view = copy.deepcopy(found)
    view.setdefault("name", req.params["name"])
    view["type"] = DEFINITION_TYPE
    return Response(200, view)
