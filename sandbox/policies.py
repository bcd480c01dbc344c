"""The Azure Policy built-in definitions the sandbox knows: the Container Registry ones about network
access, with their ids, effects and rules as Azure/azure-policy publishes them
(``built-in-policies/policyDefinitions/Container Registry/``: ``ACR_PublicNetworkAccess_Modify.json``
at commit 22468e778ed359ede264242aeb95d7fbab2ca879, ``ACR_PublicNetworkAccess_AuditDeny.json`` at
58fcf068ecb5e96d23958d9799cf872e687a1a4a, ``ACR_NetworkRulesExist_AuditDeny.json`` at
1da2588a2dc596cfb9d1feb8eb6027981cb04bf9). That repository holds no built-in for the
trusted-services bypass, so a scenario models one as a custom definition.
"""

from __future__ import annotations

from typing import Any

ASSIGNMENT_TYPE = "Microsoft.Authorization/policyAssignments"
DEFINITION_TYPE = "Microsoft.Authorization/policyDefinitions"
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
