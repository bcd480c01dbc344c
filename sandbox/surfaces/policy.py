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

The built-ins known here are the Container Registry ones about network access, with their ids,
effects and rules as Azure/azure-policy publishes them (``built-in-policies/policyDefinitions/
Container Registry/``: ``ACR_PublicNetworkAccess_Modify.json`` at commit
22468e778ed359ede264242aeb95d7fbab2ca879, ``ACR_PublicNetworkAccess_AuditDeny.json`` at
58fcf068ecb5e96d23958d9799cf872e687a1a4a, ``ACR_NetworkRulesExist_AuditDeny.json`` at
1da2588a2dc596cfb9d1feb8eb6027981cb04bf9); that repository holds no built-in for the
trusted-services bypass, so a scenario models one as a custom definition. Policy effects are not
enforced by the sandbox: the product only reads them.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import rbac
from ..arm import page
from ..server import ArmError, Request, Response, route

ASSIGNMENT_TYPE = "Microsoft.Authorization/policyAssignments"
DEFINITION_TYPE = "Microsoft.Authorization/policyDefinitions"
_ASSIGNMENTS = f"/providers/{ASSIGNMENT_TYPE}"
_DEFINITIONS = f"/providers/{DEFINITION_TYPE}"
_PUBLIC_ACCESS = "Microsoft.ContainerRegistry/registries/publicNetworkAccess"
_DEFAULT_ACTION = "Microsoft.ContainerRegistry/registries/networkRuleSet.defaultAction"
_IS_REGISTRY = {"field": "type", "equals": "Microsoft.ContainerRegistry/registries"}


def _effect(default: str, *allowed: str) -> dict[str, Any]:
    return {"effect": {"type": "String", "defaultValue": default, "allowedValues": list(allowed),
                       "metadata": {"displayName": "Effect"}}}


def _builtin(name: str, display_name: str, version: str, parameters: dict[str, Any],
             rule: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{_DEFINITIONS}/{name}", "name": name, "type": DEFINITION_TYPE,
            "properties": {"displayName": display_name, "policyType": "BuiltIn", "mode": "Indexed",
                           "metadata": {"version": version, "category": "Container Registry"},
                           "version": version, "parameters": parameters, "policyRule": rule}}


BUILTIN_DEFINITIONS = {d["name"]: d for d in (
    _builtin("a3701552-92ea-433e-9d17-33b7f1208fc9", "Configure Container registries to disable public network access",
             "1.0.0", _effect("Modify", "Modify", "Disabled"), {
                 "if": {"allOf": [_IS_REGISTRY, {"field": _PUBLIC_ACCESS, "notEquals": "Disabled"}]},
                 "then": {"effect": "[parameters('effect')]", "details": {
                     "conflictEffect": "audit",
                     "roleDefinitionIds": [
                         "/providers/microsoft.authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"],
                     "operations": [{"operation": "addOrReplace", "field": _PUBLIC_ACCESS, "value": "Disabled"}]}}}),
    _builtin("0fdf0491-d080-4575-b627-ad0e843cba0f",
             "Public network access should be disabled for Container registries", "1.0.0",
             _effect("Audit", "Audit", "Deny", "Disabled"), {
                 "if": {"allOf": [_IS_REGISTRY, {"field": _PUBLIC_ACCESS, "notEquals": "Disabled"}]},
                 "then": {"effect": "[parameters('effect')]"}}),
    _builtin("d0793b48-0edc-4296-a390-4c75d1bdfd71",
             "Container registries should not allow unrestricted network access", "2.0.0",
             _effect("Audit", "Audit", "Deny", "Disabled"), {
                 "if": {"allOf": [_IS_REGISTRY, {"allOf": [
                     {"anyof": [{"field": _DEFAULT_ACTION, "exists": "false"},
                                {"field": _DEFAULT_ACTION, "equals": "Allow"}]},
                     {"anyof": [{"field": _PUBLIC_ACCESS, "exists": "false"},
                                {"field": _PUBLIC_ACCESS, "equals": "Enabled"}]}]}]},
                 "then": {"effect": "[parameters('effect')]"}}),
)}
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
