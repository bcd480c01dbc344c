"""Management locks (``Microsoft.Authorization/locks``, api-version 2020-05-01), read-only here.

``GET {scope}/providers/Microsoft.Authorization/locks`` lists the locks at the scope and below it,
as ManagementLocks_ListAtSubscriptionLevel ("all the management locks for a subscription"),
…ListAtResourceGroupLevel and …ListAtResourceLevel ("for a resource or any level below resource")
do (azure-rest-api-specs ``specification/resources/resource-manager/Microsoft.Authorization/stable/
2020-05-01/locks.json``); ``GET …/locks/{name}`` reads one. Locks come from the scenario's
``resources``; what they refuse is ``sandbox/blockers.py``.
"""

from __future__ import annotations

from typing import Any

from .. import rbac
from ..arm import data_view, page
from ..blockers import LOCK_TYPE, lock_scope
from ..server import ArmError, Request, Response, route

_LOCKS = "/providers/Microsoft.Authorization/locks"
READ = "Microsoft.Authorization/locks/read"
_OUTPUT_DEFAULTS: dict[str, Any] = {"notes": None, "owners": None}


def _view(lock: dict[str, Any]) -> dict[str, Any]:
    return data_view(lock, LOCK_TYPE, _OUTPUT_DEFAULTS)


@route("GET", "{scope*}" + _LOCKS, action=READ)
def list_locks(req: Request) -> Response:
    scope = "/" + req.params.get("scope", "").strip("/")
    found = [_view(lock) for lock in req.world.of_type(LOCK_TYPE) if rbac.scope_contains(scope, lock_scope(lock))]
    return Response(200, page(found))


@route("GET", "{scope*}" + _LOCKS + "/{name}", action=READ)
def get_lock(req: Request) -> Response:
    found = req.world.get(req.path)
    if found is None:
        raise ArmError(404, "LockNotFound", f"The lock '{req.params['name']}' could not be found.")
    return Response(200, _view(found))
