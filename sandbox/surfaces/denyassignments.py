"""Deny assignments (``Microsoft.Authorization/denyAssignments``, api-version 2022-04-01): read-only
in ARM, as in Azure, where only Azure itself (managed applications, deployment stacks) makes them.

``GET {scope}/providers/Microsoft.Authorization/denyAssignments`` lists those at, above and below
the scope, or with ``$filter=atScope()`` those at or above it; ``GET …/denyAssignments/{id}`` reads
one (azure-rest-api-specs ``specification/authorization/resource-manager/Microsoft.Authorization/
stable/2022-04-01/authorization-DenyAssignmentGetCalls.json``, DenyAssignments_ListForScope and
DenyAssignments_Get). They come from the scenario's ``resources``; what they refuse is
``sandbox/blockers.py``.
"""

from __future__ import annotations

from typing import Any

from .. import rbac
from ..arm import data_view, page
from ..blockers import DENY_ASSIGNMENT_TYPE
from ..server import ArmError, Request, Response, route

_DENY = "/providers/Microsoft.Authorization/denyAssignments"
READ = "Microsoft.Authorization/denyAssignments/read"
_OUTPUT_DEFAULTS: dict[str, Any] = {
    "denyAssignmentName": None, "description": None, "permissions": [], "scope": None,
    "doNotApplyToChildScopes": False, "principals": [], "excludePrincipals": [], "isSystemProtected": True,
}


def _view(deny: dict[str, Any]) -> dict[str, Any]:
    return data_view(deny, DENY_ASSIGNMENT_TYPE, _OUTPUT_DEFAULTS)


@route("GET", "{scope*}" + _DENY, action=READ)
def list_deny_assignments(req: Request) -> Response:
    scope = "/" + req.params.get("scope", "").strip("/")
    flt = req.query.get("$filter", "").strip()
    if flt not in ("", "atScope()"):
        # only the filter the product uses is modelled; the others are answered as unsupported
        raise ArmError(400, "InvalidFilter", f"The filter '{flt}' is not supported by the sandbox.")
    found = []
    for deny in req.world.of_type(DENY_ASSIGNMENT_TYPE):
        at = str((deny.get("properties") or {}).get("scope") or "")
        if rbac.scope_contains(at, scope) or (not flt and rbac.scope_contains(scope, at)):
            found.append(_view(deny))
    return Response(200, page(found))


@route("GET", "{scope*}" + _DENY + "/{name}", action=READ)
def get_deny_assignment(req: Request) -> Response:
    found = req.world.get(req.path)
    if found is None:
        raise ArmError(404, "DenyAssignmentNotFound", f"The deny assignment '{req.params['name']}' is not found.")
    return Response(200, _view(found))
