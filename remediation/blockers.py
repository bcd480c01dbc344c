"""What would refuse a write before it is made: management locks, deny assignments, Azure Policy.

Pure functions of the context the gather read; :mod:`remediation.policy` decides with them.

- A ``ReadOnly`` lock at a resource or above refuses its writes and deletes, with 409
  ``ScopeLocked``; ``CanNotDelete`` refuses deletes only. A role assignment is an extension
  resource of its scope and inherits the scope's locks, and a read-only lock "prevents the
  assignment of Azure RBAC roles" scoped to the locked resource (MicrosoftDocs/azure-docs
  ``articles/azure-resource-manager/management/lock-resources.md``, ms.date 2024-03-08, commit
  03adcc30b28ecad9f81aba5638a15fb1930f5ec0: "Lock inheritance", "Considerations").
- A deny assignment refuses the actions it covers to its principals (``Everyone`` is the all-zero
  object id) unless excluded, at its scope and below unless ``doesNotApplyToChildScopes``, with
  403 ``DenyAssignmentAuthorizationFailed`` (azure-rest-api-specs ``specification/authorization/
  resource-manager/Microsoft.Authorization/stable/2022-04-01/authorization-DenyAssignmentGetCalls.json``).
- An Azure Policy ``Deny`` whose rule matches the resource as the write would leave it refuses
  the write (``RequestDisallowedByPolicy``); ``Modify`` rewrites the request's properties. Both
  are evaluated on the resource's create and update requests only (Azure/azure-policy, built-ins
  ``Container Registry/ACR_PublicNetworkAccess_Modify.json`` a3701552-92ea-433e-9d17-33b7f1208fc9
  and ``ACR_PublicNetworkAccess_AuditDeny.json`` 0fdf0491-d080-4575-b627-ad0e843cba0f).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from remediation.model import DenyAssignment, ManagementLock, PolicyAssignment, Registry
from remediation.permissions import action_matches, scope_applies

EVERYONE = "00000000-0000-0000-0000-000000000000"
"""The ``SystemDefined`` principal of deny assignments that apply to every principal."""
REGISTRY_TYPE = "Microsoft.ContainerRegistry/registries"
_REGISTRY_ALIAS = REGISTRY_TYPE.lower() + "/"
NETWORK_FIELDS = ("publicnetworkaccess", "networkrulebypassoptions", "networkruleset.defaultaction")
"""The registry properties (policy aliases after ``Microsoft.ContainerRegistry/registries/``) that
decide whether ACI can reach it: the ones a network fix writes or depends on."""
_PARAMETER = re.compile(r"^\[\s*parameters\(\s*'([^']+)'\s*\)\s*\]$", re.IGNORECASE)


def lock_refusing(locks: Iterable[ManagementLock], target: str, *, delete: bool = False) -> ManagementLock | None:
    """The lock that would refuse a write (or, with ``delete``, a delete) of ``target``, if any."""
    levels = {"readonly", "cannotdelete"} if delete else {"readonly"}
    return next((lock for lock in locks if lock.level.lower() in levels and scope_applies(lock.scope, target)), None)


def deny_refusing(denies: Iterable[DenyAssignment], principal_id: str | None, operation: str,
                  target: str) -> DenyAssignment | None:
    """The deny assignment that refuses ``operation`` at ``target`` to ``principal_id``, if any.

    With no principal id known, only deny assignments for ``Everyone`` without exclusions can be
    told to apply."""
    me = (principal_id or "").lower()
    for deny in denies:
        at_scope = deny.scope.rstrip("/").lower() == target.rstrip("/").lower()
        if not (at_scope or (deny.applies_to_child_scopes and scope_applies(deny.scope, target))):
            continue
        principals = {p.lower() for p in deny.principals}
        excluded = {p.lower() for p in deny.exclude_principals}
        if not me and (EVERYONE not in principals or excluded):
            continue
        if (me in principals or EVERYONE in principals) and me not in excluded and _covers(deny, operation):
            return deny
    return None


def _covers(deny: DenyAssignment, operation: str) -> bool:
    return any(action_matches(a, operation) for a in deny.actions) and not any(
        action_matches(n, operation) for n in deny.not_actions)


@dataclass(frozen=True)
class PolicyVerdict:
    """What an Azure Policy assignment would do to a registry write."""

    assignment: PolicyAssignment
    effect: str
    """``deny`` or ``modify`` (lower case)."""
    decided: bool
    """False where the rule holds a condition this module does not evaluate: it may apply."""
    sets: tuple[tuple[str, Any], ...] = ()
    """For ``modify``: the (alias, value) pairs its operations write."""

    def describe(self, registry_id: str) -> str:
        a = self.assignment
        who = f"Azure Policy assignment '{a.display_name or a.name}' ({a.id}; definition {a.definition_id})"
        may = "would" if self.decided else "may"
        if self.effect == "deny":
            return (f"{who} {may} deny the write to registry {registry_id} (effect Deny, "
                    "RequestDisallowedByPolicy)")
        changes = ", ".join(f"{field} to {value!r}" for field, value in self.sets) or "its network properties"
        return (f"{who} {may} modify registry {registry_id} on its next write (effect Modify: sets {changes}), "
                "so a network fix may not stay in effect")


def registry_after(registry: Registry, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The registry in ARM shape as a PATCH of ``changes`` (top-level properties) would leave it."""
    properties: dict[str, Any] = {
        "publicNetworkAccess": registry.public_network_access,
        "networkRuleSet": {"defaultAction": registry.default_action},
        "networkRuleBypassOptions": registry.bypass,
        "roleAssignmentMode": registry.role_assignment_mode,
    }
    properties.update(changes)
    return {"id": registry.id, "name": registry.name, "type": REGISTRY_TYPE, "tags": dict(registry.tags),
            "properties": properties}


def policy_verdicts(assignments: Iterable[PolicyAssignment], resource: Mapping[str, Any]) -> list[PolicyVerdict]:
    """The enforced Deny and Modify assignments about a registry's network properties whose rule
    matches ``resource`` (the registry as the write would leave it)."""
    verdicts: list[PolicyVerdict] = []
    resource_id = str(resource.get("id", ""))
    for assignment in assignments:
        effect = (assignment.effect or "").lower()
        if (effect not in ("deny", "modify") or not assignment.enforced
                or not scope_applies(assignment.scope, resource_id)
                or any(scope_applies(s, resource_id) for s in assignment.not_scopes)
                or not _mentions_network(assignment.rule)):
            continue
        matched = condition_matches(assignment.rule.get("if"), resource)
        if matched is False:
            continue
        sets = tuple(_modify_operations(assignment.rule)) if effect == "modify" else ()
        verdicts.append(PolicyVerdict(assignment, effect, matched is True, sets))
    return verdicts


def resolve_effect(rule: Mapping[str, Any], definition_parameters: Mapping[str, Any],
                   assigned_parameters: Mapping[str, Any]) -> str | None:
    """The effect of a policy rule as assigned: a literal, or ``[parameters('x')]`` taken from the
    assignment's parameters, else the definition's default."""
    then = rule.get("then")
    effect = then.get("effect") if isinstance(then, dict) else None
    if not isinstance(effect, str):
        return None
    param = _PARAMETER.match(effect.strip())
    if param is None:
        return effect
    name = param.group(1).lower()
    for key, value in assigned_parameters.items():
        if key.lower() == name and isinstance(value, dict) and isinstance(value.get("value"), str):
            return str(value["value"])
    for key, value in definition_parameters.items():
        if key.lower() == name and isinstance(value, dict) and isinstance(value.get("defaultValue"), str):
            return str(value["defaultValue"])
    return None


def condition_matches(condition: Any, resource: Mapping[str, Any]) -> bool | None:
    """Evaluate a policy rule's ``if`` on ``resource``; None where it holds what is not evaluated here
    (counts, ``value`` expressions, array aliases, other operators)."""
    if not isinstance(condition, dict):
        return None
    keys = {k.lower(): v for k, v in condition.items()}
    if "allof" in keys:
        return _all(condition_matches(c, resource) for c in keys["allof"] or [])
    if "anyof" in keys:
        return _any(condition_matches(c, resource) for c in keys["anyof"] or [])
    if "not" in keys:
        inner = condition_matches(keys["not"], resource)
        return None if inner is None else not inner
    if "field" not in keys or not isinstance(keys["field"], str) or "[" in keys["field"]:
        return None
    found, value = _field(resource, keys["field"])
    ops = {k: v for k, v in keys.items() if k != "field"}
    if len(ops) != 1:
        return None
    ((op, expected),) = ops.items()
    return _compare(op, found, value, expected)


def _all(results: Iterable[bool | None]) -> bool | None:
    values = list(results)
    if False in values:
        return False
    return None if None in values else True


def _any(results: Iterable[bool | None]) -> bool | None:
    values = list(results)
    if True in values:
        return True
    return None if None in values else False


def _field(resource: Mapping[str, Any], alias: str) -> tuple[bool, Any]:
    """(exists, value) of a policy field: ``type``, ``name``, ``location``, or a registry alias,
    whose path after ``Microsoft.ContainerRegistry/registries/`` is its path under ``properties``."""
    lowered = alias.lower()
    if lowered in ("type", "name", "location", "id"):
        return lowered in resource, resource.get(lowered)
    if not lowered.startswith(_REGISTRY_ALIAS):
        return False, None
    node: Any = resource.get("properties") or {}
    for part in lowered[len(_REGISTRY_ALIAS):].split("."):
        match = next((k for k in node if k.lower() == part), None) if isinstance(node, dict) else None
        if match is None:
            return False, None
        node = node[match]
    return node is not None, node


def _compare(op: str, found: bool, value: Any, expected: Any) -> bool | None:
    text = str(value).lower() if value is not None else ""
    if op == "exists":
        return found == (str(expected).lower() == "true")
    if op in ("equals", "notequals"):
        same = found and text == str(expected).lower()
        return same if op == "equals" else not same
    if op in ("in", "notin") and isinstance(expected, list):
        inside = found and text in {str(e).lower() for e in expected}
        return inside if op == "in" else not inside
    if op in ("like", "notlike"):
        pattern = ".*".join(re.escape(piece) for piece in str(expected).lower().split("*"))
        like = found and re.fullmatch(pattern, text) is not None
        return like if op == "like" else not like
    return None


def _mentions_network(rule: Mapping[str, Any]) -> bool:
    """Whether the rule tests or writes one of the registry network properties."""
    def fields(node: Any) -> Iterable[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.lower() == "field" and isinstance(value, str):
                    yield value.lower()
                yield from fields(value)
        elif isinstance(node, list):
            for item in node:
                yield from fields(item)
    # an array alias (``…[*]``) names the same property
    return any(f.startswith(_REGISTRY_ALIAS) and f[len(_REGISTRY_ALIAS):].split("[")[0] in NETWORK_FIELDS
               for f in fields(rule))


def _modify_operations(rule: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    then = rule.get("then")
    details = then.get("details") if isinstance(then, dict) else None
    for operation in (details.get("operations") if isinstance(details, dict) else None) or []:
        if isinstance(operation, dict) and str(operation.get("operation", "")).lower() in ("addorreplace", "add"):
            yield str(operation.get("field", "")), operation.get("value")
