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
"""

from __future__ import annotations

from typing import Any

from . import rbac
from .world import World

LOCK_TYPE = "Microsoft.Authorization/locks"
DENY_ASSIGNMENT_TYPE = "Microsoft.Authorization/denyAssignments"
EVERYONE = "00000000-0000-0000-0000-000000000000"
_LOCK_SEGMENT = "/providers/microsoft.authorization/locks/"


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
