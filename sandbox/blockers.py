"""What ARM refuses whatever the caller's roles: management locks and deny assignments.

The server asks these for every ARM request (``server.check_authorization`` for deny assignments,
``server._route`` for locks); each returns the error ARM answers, or None.

- Locks (``Microsoft.Authorization/locks``, azure-rest-api-specs ``specification/resources/
  resource-manager/Microsoft.Authorization/stable/2020-05-01/locks.json``): a lock applies at its
  scope and below ("Lock inheritance"; a role assignment or other extension resource inherits the
  lock of the resource it is on). ``ReadOnly`` refuses every request but reads, POST included;
  ``CanNotDelete`` refuses deletes, including of role assignments (MicrosoftDocs/azure-docs
  ``articles/azure-resource-manager/management/lock-resources.md``, ms.date 2024-03-08, commit
  03adcc30b28ecad9f81aba5638a15fb1930f5ec0). Locks bind the control plane only: the registry data
  plane (``arm=False`` routes) is never locked. The answer is 409 ``ScopeLocked``, in the words
  Azure prints ("The scope '…' cannot perform write operation because following scope(s) are
  locked: '…'. Please remove the lock and try again."; the same text is quoted in MicrosoftDocs
  troubleshooting articles, e.g. Azure Automation's Start/Stop VMs deployment errors).
- Deny assignments (``Microsoft.Authorization/denyAssignments``, read-only in ARM; swagger
  ``specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/
  authorization-DenyAssignmentGetCalls.json``): the listed ``principals`` (``Everyone`` is the
  all-zero id; groups count for their members) may not perform the ``actions`` less the
  ``notActions`` at the scope (and below it unless ``doNotApplyToChildScopes``), unless they are
  in ``excludePrincipals``. ARM answers 403 ``DenyAssignmentAuthorizationFailed`` ("… has
  permission to perform action '…' on scope '…'; however, the access is denied because of the
  deny assignment with name '…' and Id '…' at scope '…'.", as Azure CLI prints it); a deny
  assignment is checked after the caller's roles allowed the action.
- Azure Policy ``Deny`` (``Microsoft.Authorization/policyAssignments`` with their definitions): a
  PUT or PATCH whose resulting resource matches an enforced assignment's rule at its scope (less
  ``notScopes``) is refused with 403 ``RequestDisallowedByPolicy``, naming the assignment and the
  definition. Deny judges the resource as the request would leave it, whichever property the
  request sets. Aliases are read as ``{resource type}/{path under properties}``; a rule holding
  anything else (counts, ``value`` expressions, array aliases) is not enforced here. ``Modify``
  and the other effects are not applied.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

from . import rbac
from .policies import ASSIGNMENT_TYPE, BUILTIN_DEFINITIONS
from .world import World, resource_type_of

LOCK_TYPE = "Microsoft.Authorization/locks"
DENY_ASSIGNMENT_TYPE = "Microsoft.Authorization/denyAssignments"
EVERYONE = "00000000-0000-0000-0000-000000000000"
_LOCK_SEGMENT = "/providers/microsoft.authorization/locks/"
_POLICY_SEGMENT = "/providers/microsoft.authorization/policyassignments/"
_PARAMETER = re.compile(r"^\[\s*parameters\(\s*'([^']+)'\s*\)\s*\]$", re.IGNORECASE)


def lock_scope(lock: dict[str, Any]) -> str:
    """The scope a lock is on: its id before ``/providers/Microsoft.Authorization/locks/``."""
    lock_id = str(lock["id"])
    at = lock_id.lower().rfind(_LOCK_SEGMENT)
    return lock_id[:at] if at > 0 else lock_id


def lock_refusal(world: World, method: str, path: str) -> tuple[str, str] | None:
    """``(code, message)`` of the 409 ARM answers when a lock at or above ``path`` refuses ``method``."""
    if method in ("GET", "HEAD"):
        return None
    levels = {"readonly", "cannotdelete"} if method == "DELETE" else {"readonly"}
    scopes = [lock_scope(lock) for lock in world.of_type(LOCK_TYPE)
              if str((lock.get("properties") or {}).get("level", "")).lower() in levels
              and rbac.scope_contains(lock_scope(lock), path)]
    if not scopes:
        return None
    operation = "delete" if method == "DELETE" else "write"
    locked = ",".join(f"'{scope}'" for scope in sorted(set(scopes), key=str.lower))
    return ("ScopeLocked", f"The scope '{path}' cannot perform {operation} operation because following scope(s) "
                           f"are locked: {locked}. Please remove the lock and try again.")


def deny_refusal(world: World, caller: str, action: str, scope: str) -> tuple[str, str] | None:
    """``(code, message)`` of the 403 ARM answers when a deny assignment refuses ``action`` at ``scope``
    to ``caller``."""
    me = rbac.memberships(caller, world.groups) if caller else set()
    for deny in world.of_type(DENY_ASSIGNMENT_TYPE):
        props = deny.get("properties") or {}
        deny_scope = str(props.get("scope") or "")
        exact = deny_scope.rstrip("/").lower() == scope.rstrip("/").lower()
        if not (exact or (not props.get("doNotApplyToChildScopes") and rbac.scope_contains(deny_scope, scope))):
            continue
        principals = {str(p.get("id", "")).lower() for p in props.get("principals") or []}
        excluded = {str(p.get("id", "")).lower() for p in props.get("excludePrincipals") or []}
        if not (principals & (me | {EVERYONE})) or me & excluded:
            continue
        if not any(rbac.permission_grants(p, action, data=False) for p in props.get("permissions") or []):
            continue
        return ("DenyAssignmentAuthorizationFailed",
                f"The client '{caller}' with object id '{caller}' has permission to perform action '{action}' on "
                f"scope '{scope}'; however, the access is denied because of the deny assignment with name "
                f"'{props.get('denyAssignmentName') or deny.get('name')}' and Id '{deny.get('name')}' at scope "
                f"'{deny_scope}'.")
    return None


def policy_refusal(world: World, method: str, path: str, read_body: Callable[[], Any]) -> tuple[str, str] | None:
    """``(code, message)`` of the 403 ARM answers when an enforced ``Deny`` policy refuses a PUT or
    PATCH of the resource at ``path``; ``read_body`` is called only where a policy is assigned."""
    assignments = world.of_type(ASSIGNMENT_TYPE) if method in ("PUT", "PATCH") and "/providers/" in path else []
    body = read_body() if assignments else None
    if not isinstance(body, dict):
        return None
    existing = world.get(path) if method == "PATCH" else None
    after = _merged(existing or {}, body)
    after.update({"id": path, "name": path.rstrip("/").rsplit("/", 1)[-1], "type": resource_type_of(path)})
    for assignment in assignments:
        props = assignment.get("properties") or {}
        scope = str(props.get("scope") or _assignment_scope(str(assignment["id"])))
        if (str(props.get("enforcementMode") or "Default").lower() != "default" or not rbac.scope_contains(scope, path)
                or any(rbac.scope_contains(str(s), path) for s in props.get("notScopes") or [])):
            continue
        definition_id = str(props.get("policyDefinitionId", ""))
        builtin = BUILTIN_DEFINITIONS.get(definition_id.rstrip("/").rsplit("/", 1)[-1].lower())
        definition = world.get(definition_id) or builtin
        definition_props = (definition or {}).get("properties") or {}
        rule = definition_props.get("policyRule") or {}
        effect = _effect(rule, definition_props.get("parameters") or {}, props.get("parameters") or {})
        if effect.lower() == "deny" and _matches(rule.get("if"), after):
            identifiers = [{"policyAssignment": {"name": assignment.get("name") or scope, "id": assignment["id"]},
                            "policyDefinition": {"name": definition_id.rsplit("/", 1)[-1], "id": definition_id}}]
            return ("RequestDisallowedByPolicy",
                    f"Resource '{after['name']}' was disallowed by policy. Policy identifiers: "
                    f"'{json.dumps(identifiers, separators=(',', ':'))}'.")
    return None


def _assignment_scope(assignment_id: str) -> str:
    at = assignment_id.lower().rfind(_POLICY_SEGMENT)
    return assignment_id[:at] if at > 0 else assignment_id


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _effect(rule: dict[str, Any], defaults: dict[str, Any], assigned: dict[str, Any]) -> str:
    effect = str((rule.get("then") or {}).get("effect") or "")
    param = _PARAMETER.match(effect.strip())
    if param is None:
        return effect
    name = param.group(1).lower()
    values = [v.get("value") for k, v in assigned.items() if k.lower() == name and isinstance(v, dict)]
    values += [v.get("defaultValue") for k, v in defaults.items() if k.lower() == name and isinstance(v, dict)]
    return str(next((v for v in values if v is not None), ""))


def _matches(condition: Any, resource: dict[str, Any]) -> bool:
    """A policy rule's ``if`` on ``resource``; what is not read here never matches."""
    if not isinstance(condition, dict):
        return False
    keys = {k.lower(): v for k, v in condition.items()}
    if "allof" in keys:
        return all(_matches(c, resource) for c in keys["allof"] or [])
    if "anyof" in keys:
        return any(_matches(c, resource) for c in keys["anyof"] or [])
    if "not" in keys:
        return not _matches(keys["not"], resource)
    alias = keys.pop("field", None)
    if not isinstance(alias, str) or "[" in alias or len(keys) != 1:
        return False
    found, value = _field(resource, alias)
    ((key, expected),) = keys.items()
    op, text = str(key), str(value).lower()
    if op == "exists":
        return found == (str(expected).lower() == "true")
    if op in ("equals", "notequals"):
        return (found and text == str(expected).lower()) == (op == "equals")
    if op in ("in", "notin") and isinstance(expected, list):
        return (found and text in {str(e).lower() for e in expected}) == (op == "in")
    return False


def _field(resource: dict[str, Any], alias: str) -> tuple[bool, Any]:
    lowered = alias.lower()
    if lowered in ("type", "name", "location"):
        return resource.get(lowered) is not None, resource.get(lowered)
    prefix = str(resource.get("type", "")).lower() + "/"
    if not lowered.startswith(prefix):
        return False, None
    node: Any = resource.get("properties") or {}
    for part in lowered[len(prefix):].split("."):
        key = next((k for k in node if k.lower() == part), None) if isinstance(node, dict) else None
        if key is None:
            return False, None
        node = node[key]
    return node is not None, node
