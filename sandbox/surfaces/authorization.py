"""Azure RBAC over ARM (``azure-mgmt-authorization``, api-version 2022-04-01).

- Role assignments at any scope (subscription, resource group, resource):
  ``{scope}/providers/Microsoft.Authorization/roleAssignments[/{name}]``; PUT, GET, DELETE and
  list with ``$filter`` ``atScope()``, ``principalId eq '<id>'``, ``assignedTo('<id>')``.
  Listing at a scope returns the assignments at it, above it (inherited) and, unless
  ``atScope()``, below it. The SDK's list-for-subscription / -resource-group / -resource calls
  are the same route. ``principalId eq`` lists the principal's own assignments (the swagger's
  ``RoleAssignmentFilterParameter``, azure-rest-api-specs
  ``specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/
  authorization-RoleAssignmentsCalls.json``); ``assignedTo`` also lists those of every group the
  principal belongs to, transitively ("If the user is a member of a group that has a role
  assignment, that role assignment is also listed. This filter is transitive for groups",
  MicrosoftDocs/azure-docs ``articles/role-based-access-control/role-assignments-list-rest.md``).
  Group memberships are the scenario's ``groups``.
- Role definitions: GET by GUID and list with ``$filter`` ``roleName eq '<name>'`` or
  ``type eq 'BuiltInRole'|'CustomRole'``; PUT/DELETE of custom roles. Ids are returned under the
  subscription of the scope asked for, as ARM does.

Errors use ARM's codes: ``RoleAssignmentExists`` (the same principal, role and scope, whatever the
condition), ``RoleAssignmentUpdateNotPermitted``,
``PrincipalNotFound``, ``RoleDefinitionDoesNotExist``, ``InvalidRoleAssignmentId``. Writes are
recorded (Activity Log and Event Grid) whether they succeed or fail, and new assignments take
effect only after ``behaviour.rbacPropagationSeconds`` (a scenario's assignment created
``sandbox.createdSecondsAgo`` before the run too; its ``createdOn`` tells).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .. import rbac
from ..arm import not_found, page, record_write
from ..server import ArmError, Request, Response, route
from ..world import World, iso, resource_group_of, subscription_of

_NS = "Microsoft.Authorization"
_RA = f"/providers/{_NS}/roleAssignments"
_RD = f"/providers/{_NS}/roleDefinitions"
RA_TYPE = f"{_NS}/roleAssignments"
RD_TYPE = f"{_NS}/roleDefinitions"
RA_READ = f"{_NS}/roleAssignments/read"
RA_WRITE = f"{_NS}/roleAssignments/write"
RA_DELETE = f"{_NS}/roleAssignments/delete"
RD_READ = f"{_NS}/roleDefinitions/read"
RD_WRITE = f"{_NS}/roleDefinitions/write"
RD_DELETE = f"{_NS}/roleDefinitions/delete"

# Attribute names that delegation conditions test (``@Request[...]`` / ``@Resource[...]``).
ATTR_ROLE = f"{_NS}/roleAssignments:RoleDefinitionId"
ATTR_PRINCIPAL = f"{_NS}/roleAssignments:PrincipalId"
ATTR_PRINCIPAL_TYPE = f"{_NS}/roleAssignments:PrincipalType"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ROLE_ID = re.compile(r"^(?:/subscriptions/[^/]+)?/providers/Microsoft\.Authorization/roleDefinitions/([^/]+)$",
                      re.IGNORECASE)
_OUTPUT_DEFAULTS: dict[str, Any] = {
    "principalType": None, "description": None, "condition": None, "conditionVersion": None,
    "createdOn": None, "updatedOn": None, "createdBy": None, "updatedBy": None,
    "delegatedManagedIdentityResourceId": None,
}


def _scope(req: Request) -> str:
    """The ``{scope}`` of the path, normalised to ``/subscriptions/...`` (``/`` for the tenant root)."""
    return "/" + req.params.get("scope", "").strip("/")


def _same_scope(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower() or (a.strip("/") == "" and b.strip("/") == "")


def _check_subscription(world: World, scope: str) -> None:
    sub = subscription_of(scope)
    if scope.lower().startswith("/subscriptions/") and not world.subscription_exists(sub):
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")


def _check_scope_exists(world: World, scope: str) -> None:
    """ARM refuses to create an extension resource on a group or resource that does not exist."""
    _check_subscription(world, scope)
    sub, rg = subscription_of(scope), resource_group_of(scope)
    if rg and world.resource_group(sub, rg) is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    if "/providers/" in scope.lower() and world.get(scope) is None:
        raise not_found(scope)


# --- principals ------------------------------------------------------------------------------

def principal_type_of(world: World, principal_id: str) -> str | None:
    """The directory type of a principal the sandbox knows, or None when it is not in the directory.

    Known: the deploying user (the scenario's deployer, else the sandbox's user), the remediator,
    the scenario's groups, user-assigned and system-assigned identities of resources, and
    principals named by the scenario's own role assignments.
    """
    from ..runtime import USER_PRINCIPAL  # late: runtime imports the surfaces

    pid = principal_id.lower()
    if world.remediator and pid == world.remediator.lower():
        return "ServicePrincipal"
    if pid in (USER_PRINCIPAL.lower(), (world.deployer or "").lower()):
        return "User"
    if pid in world.groups:
        return "Group"
    with world.lock:
        resources = list(world.resources.items())
    for key, res in resources:
        if str(res.get("type", "")).lower() == RA_TYPE.lower():
            props = res.get("properties", {})
            if key in world.scenario_resource_ids and str(props.get("principalId", "")).lower() == pid:
                return str(props.get("principalType") or "ServicePrincipal")
            continue
        if str(res.get("properties", {}).get("principalId", "")).lower() == pid:
            return "ServicePrincipal"
        ident = res.get("identity") or {}
        if str(ident.get("principalId", "")).lower() == pid:
            return "ServicePrincipal"
        for uami in (ident.get("userAssignedIdentities") or {}).values():
            if isinstance(uami, dict) and str(uami.get("principalId", "")).lower() == pid:
                return "ServicePrincipal"
    return None


# --- role definitions ------------------------------------------------------------------------

def _role_view(role: dict[str, Any], scope: str, *, custom: bool) -> dict[str, Any]:
    """A role definition as ARM returns it when asked at ``scope``."""
    out = copy.deepcopy(role)
    guid = rbac.guid_of(role["id"])
    sub = subscription_of(scope)
    out["id"] = f"/subscriptions/{sub}{_RD}/{guid}" if sub else f"{_RD}/{guid}"
    out["name"] = guid
    out["type"] = RD_TYPE
    props = out.setdefault("properties", {})
    props.setdefault("type", "CustomRole" if custom else "BuiltInRole")
    props.setdefault("roleName", guid)
    props.setdefault("description", "")
    props.setdefault("assignableScopes", ["/"])
    for perm in props.get("permissions") or []:
        for key in ("actions", "notActions", "dataActions", "notDataActions"):
            perm.setdefault(key, [])
    for key in ("createdOn", "updatedOn", "createdBy", "updatedBy"):
        props.setdefault(key, None)
    return out


def _visible_roles(world: World, scope: str) -> list[tuple[dict[str, Any], bool]]:
    """Built-ins, then custom roles assignable at ``scope`` (any of their assignable scopes contains it)."""
    roles: list[tuple[dict[str, Any], bool]] = [(r, False) for r in rbac.builtin_role_definitions()]
    with world.lock:
        customs = list(world.custom_roles.values())
    for role in customs:
        assignable = role.get("properties", {}).get("assignableScopes") or ["/"]
        if scope.strip("/") == "" or any(rbac.scope_contains(s, scope) for s in assignable):
            roles.append((role, True))
    return roles


_RD_FILTER = re.compile(r"^\s*(roleName|type)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


def _role_filter(text: str) -> list[tuple[str, str]]:
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        m = _RD_FILTER.match(part)
        if not m:
            raise ArmError(400, "InvalidFilter", f"The filter '{text}' is not supported.")
        clauses.append((m.group(1).lower(), m.group(2)))
    return clauses


# Reading role definitions is an ARM operation like any other ("Microsoft.Authorization/roleDefinitions/read",
# "Get information about a role definition": MicrosoftDocs azure-docs
# articles/role-based-access-control/permissions/management-and-governance.md); Reader's */read holds it.
@route("GET", "{scope*}" + _RD, action=RD_READ)
def list_role_definitions(req: Request) -> Response:
    scope = _scope(req)
    _check_subscription(req.world, scope)
    clauses = _role_filter(req.query.get("$filter", ""))
    items = []
    for role, custom in _visible_roles(req.world, scope):
        view = _role_view(role, scope, custom=custom)
        props = view["properties"]
        if all(str(props.get("roleName" if key == "rolename" else "type", "")).lower() == value.lower()
               for key, value in clauses):
            items.append(view)
    return Response(200, page(items))


@route("GET", "{scope*}" + _RD + "/{guid}", action=RD_READ)
def get_role_definition(req: Request) -> Response:
    scope = _scope(req)
    _check_subscription(req.world, scope)
    guid = req.params["guid"].lower()
    for role, custom in _visible_roles(req.world, "/"):
        if rbac.guid_of(role["id"]) == guid:
            return Response(200, _role_view(role, scope, custom=custom))
    raise ArmError(404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does not exist.")


@route("PUT", "{scope*}" + _RD + "/{guid}", action=RD_WRITE)
def put_role_definition(req: Request) -> Response:
    """Create or update a custom role (built-in roles cannot be changed)."""
    world = req.world
    scope = _scope(req)
    _check_subscription(world, scope)
    guid = req.params["guid"].lower()
    body = req.json() or {}
    rid = f"{scope.rstrip('/')}{_RD}/{guid}"
    props = copy.deepcopy(body.get("properties") or {})

    def fail(err: ArmError) -> ArmError:
        record_write(req, resource_id=rid, operation_name=RD_WRITE, status_code=err.status,
                     error=err.body()["error"], request_body=body)
        return err

    if not _GUID.match(guid):
        raise fail(ArmError(400, "InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid."))
    if any(rbac.guid_of(r["id"]) == guid for r in rbac.builtin_role_definitions()):
        raise fail(ArmError(403, "RoleDefinitionUpdateNotPermitted", "Built-in role definitions cannot be changed."))
    if not isinstance(props.get("permissions"), list) or not props.get("roleName"):
        raise fail(ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                            "deserialized: 'Required properties 'roleName' and 'permissions' not found in JSON.'"))
    name = str(props["roleName"])
    with world.lock:
        clash = [r for r, _ in _visible_roles(world, "/")
                 if rbac.guid_of(r["id"]) != guid and str(r["properties"].get("roleName", "")).lower() == name.lower()]
        if clash:
            raise fail(ArmError(409, "RoleDefinitionWithSameNameExists",
                                "A custom role with the same name already exists in this directory. "
                                "Use a different name."))
        existing = world.custom_roles.get(guid)
        now = iso(world.now())
        props["type"] = "CustomRole"
        props.setdefault("assignableScopes", [scope])
        props["createdOn"] = (existing or {}).get("properties", {}).get("createdOn") or now
        props["updatedOn"] = now
        props["createdBy"] = (existing or {}).get("properties", {}).get("createdBy") or req.caller
        props["updatedBy"] = req.caller
        sub = subscription_of(scope)
        role = {"id": f"/subscriptions/{sub}{_RD}/{guid}" if sub else f"{_RD}/{guid}", "name": guid,
                "type": RD_TYPE, "properties": props}
        world.custom_roles[guid] = role
    status = 200 if existing else 201
    record_write(req, resource_id=rid, operation_name=RD_WRITE, status_code=status, existed=existing is not None,
                 request_body=body)
    return Response(status, _role_view(role, scope, custom=True))


@route("DELETE", "{scope*}" + _RD + "/{guid}", action=RD_DELETE)
def delete_role_definition(req: Request) -> Response:
    world = req.world
    scope = _scope(req)
    _check_subscription(world, scope)
    guid = req.params["guid"].lower()
    with world.lock:
        role = world.custom_roles.pop(guid, None)
    if role is None:
        return Response(204)
    record_write(req, resource_id=f"{scope.rstrip('/')}{_RD}/{guid}", operation_name=RD_DELETE, status_code=200,
                 existed=True, delete=True)
    return Response(200, _role_view(role, scope, custom=True))


# --- role assignments ------------------------------------------------------------------------

def _assignment_view(assignment: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(assignment)
    props = out.setdefault("properties", {})
    for key, value in _OUTPUT_DEFAULTS.items():
        props.setdefault(key, value)
    out["type"] = RA_TYPE
    return out


def _find_by_name(world: World, name: str) -> dict[str, Any] | None:
    """Assignment names are GUIDs unique across all scopes."""
    for a in world.role_assignments():
        if str(a.get("name", "")).lower() == name.lower():
            return a
    return None


def _conditions_input(props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if props.get("roleDefinitionId"):
        out[ATTR_ROLE] = rbac.guid_of(str(props["roleDefinitionId"]))
    if props.get("principalId"):
        out[ATTR_PRINCIPAL] = str(props["principalId"])
    if props.get("principalType"):
        out[ATTR_PRINCIPAL_TYPE] = str(props["principalType"])
    return out


def assignment_attributes(req: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """``@Request`` attributes from the PUT body and ``@Resource`` attributes of the existing assignment."""
    request: dict[str, Any] = {}
    if req.method == "PUT":
        body = req.json() or {}
        props = body.get("properties") if isinstance(body, dict) else None
        request = _conditions_input(props if isinstance(props, dict) else {})
    existing = req.world.get(req.path)
    resource = _conditions_input(existing.get("properties", {})) if existing else {}
    return request, resource


_RA_CLAUSE = re.compile(
    r"^\s*(?:(?P<at>atScope\(\s*\))|principalId\s+eq\s+'(?P<pid>[^']*)'|assignedTo\(\s*'(?P<to>[^']*)'\s*\))\s*$",
    re.IGNORECASE)


def _assignment_filter(world: World, text: str) -> tuple[bool, set[str] | None]:
    """(at scope only, the principal ids whose assignments are listed) from a ``$filter``; unknown
    forms are refused as ARM does. ``assignedTo`` adds the principal's groups, transitively."""
    at_scope, principals = False, None
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        m = _RA_CLAUSE.match(part)
        if not m:
            raise ArmError(400, "InvalidFilter", f"The filter '{text}' is not supported.")
        if m.group("at"):
            at_scope = True
        elif m.group("to") is not None:
            principals = rbac.memberships(m.group("to"), world.groups)
        else:
            principals = {m.group("pid").lower()}
    return at_scope, principals


@route("GET", "{scope*}" + _RA, action=RA_READ)
def list_role_assignments(req: Request) -> Response:
    """At, above and (without ``atScope()``) below the scope; ``assignedTo`` includes the principal's groups."""
    scope = _scope(req)
    _check_subscription(req.world, scope)
    at_scope, principals = _assignment_filter(req.world, req.query.get("$filter", ""))
    items = []
    for a in req.world.role_assignments():
        props = a["properties"]
        a_scope = str(props.get("scope", ""))
        related = rbac.scope_contains(a_scope, scope) or (not at_scope and rbac.scope_contains(scope, a_scope))
        if not related:
            continue
        if principals is not None and str(props.get("principalId", "")).lower() not in principals:
            continue
        items.append(_assignment_view(a))
    return Response(200, page(items))


@route("GET", "{scope*}" + _RA + "/{name}", action=RA_READ)
def get_role_assignment(req: Request) -> Response:
    _check_subscription(req.world, _scope(req))
    found = req.world.get(req.path)
    if found is None:
        raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{req.params['name']}' is not found.")
    return Response(200, _assignment_view(found))


@route("PUT", "{scope*}" + _RA + "/{name}", action=RA_WRITE, attributes=assignment_attributes)
def put_role_assignment(req: Request) -> Response:
    world = req.world
    scope = _scope(req)
    name = req.params["name"]
    rid = f"{scope.rstrip('/')}{_RA}/{name}"
    body = req.json() or {}
    _check_scope_exists(world, scope)

    def fail(err: ArmError) -> ArmError:
        record_write(req, resource_id=rid, operation_name=RA_WRITE, status_code=err.status,
                     error=err.body()["error"], request_body=body)
        return err

    if not _GUID.match(name):
        raise fail(ArmError(400, "InvalidRoleAssignmentId",
                            f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."))
    props = body.get("properties") if isinstance(body, dict) else None
    if not isinstance(props, dict):
        raise fail(ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                            "deserialized: 'Required property 'properties' not found in JSON. Path '', line 1.'"))
    for key in ("roleDefinitionId", "principalId"):
        if not isinstance(props.get(key), str) or not props[key]:
            raise fail(ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                                f"deserialized: 'Required property '{key}' not found in JSON. Path 'properties'.'"))
    m = _ROLE_ID.match(props["roleDefinitionId"].strip())
    if not m:
        raise fail(ArmError(400, "InvalidRoleDefinitionId",
                            f"The role definition ID '{props['roleDefinitionId']}' is not valid."))
    role_guid = m.group(1).lower()
    if role_guid not in world.role_definitions():
        raise fail(ArmError(400, "RoleDefinitionDoesNotExist",
                            f"The specified role definition with ID '{role_guid}' does not exist."))
    principal = props["principalId"]
    directory_type = principal_type_of(world, principal)
    requested_type = props.get("principalType")
    if directory_type is None and not requested_type:
        raise fail(ArmError(400, "PrincipalNotFound",
                            f"Principal {principal.replace('-', '')} does not exist in the directory "
                            f"{world.tenant_id}. Check that you have the correct principal ID. If you are "
                            "creating this principal and then immediately assigning a role, this error might be "
                            "related to a replication delay. In this case, set the role assignment principalType "
                            "property to a value, such as ServicePrincipal, User, or Group.  "
                            "See https://aka.ms/docs-principaltype"))
    if directory_type and requested_type and str(requested_type).lower() != directory_type.lower():
        raise fail(ArmError(400, "UnmatchedPrincipalType",
                            f"The PrincipalId '{principal.replace('-', '')}' has type '{directory_type}' , which is "
                            f"different from specified PrincipalType '{requested_type}'."))
    sub = subscription_of(scope)
    role_id = f"/subscriptions/{sub}{_RD}/{role_guid}" if sub else f"{_RD}/{role_guid}"
    condition = props.get("condition") or None
    with world.lock:
        same_name = _find_by_name(world, name)
        if same_name is not None:
            old = same_name["properties"]
            if not (_same_scope(old.get("scope", ""), scope)
                    and str(old.get("principalId", "")).lower() == principal.lower()
                    and rbac.guid_of(str(old.get("roleDefinitionId", ""))) == role_guid):
                raise fail(ArmError(409, "RoleAssignmentUpdateNotPermitted",
                                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                                    "updated."))
        else:
            # One assignment per (principal, role, scope), whatever its condition: "Is it possible to create
            # a role assignment with and without a condition, but using the same tuple of security
            # principal, role definition, and scope? No" (MicrosoftDocs azure-docs
            # articles/role-based-access-control/conditions-faq.md, ms.date 2023-05-09, commit
            # 4f3138fb00cb8ddd75692b995ee429e68966b614). A second one with another condition is refused too.
            for other in world.role_assignments():
                o = other["properties"]
                if (_same_scope(str(o.get("scope", "")), scope)
                        and str(o.get("principalId", "")).lower() == principal.lower()
                        and rbac.guid_of(str(o.get("roleDefinitionId", ""))) == role_guid):
                    raise fail(ArmError(409, "RoleAssignmentExists",
                                        "The role assignment already exists. The ID of the existing role "
                                        f"assignment is {str(other['name']).replace('-', '').lower()}."))
        now = iso(world.now())
        old_props = same_name["properties"] if same_name else {}
        stored_props = {
            "roleDefinitionId": old_props.get("roleDefinitionId") or role_id,
            "principalId": principal,
            "principalType": requested_type or old_props.get("principalType") or directory_type,
            "scope": old_props.get("scope") or scope,
            "condition": condition,
            "conditionVersion": (props.get("conditionVersion") or "2.0") if condition else None,
            "createdOn": old_props.get("createdOn") or now,
            "updatedOn": now,
            "createdBy": old_props.get("createdBy") or req.caller,
            "updatedBy": req.caller,
            "delegatedManagedIdentityResourceId": props.get("delegatedManagedIdentityResourceId"),
            "description": props.get("description"),
        }
        stored_id = same_name["id"] if same_name else rid
        assignment = {"id": stored_id, "name": same_name["name"] if same_name else name.lower(),
                      "type": RA_TYPE, "properties": stored_props}
        world.put(assignment)  # a new key gets created=now, so the propagation delay applies
    status = 200 if same_name else 201
    record_write(req, resource_id=stored_id, operation_name=RA_WRITE, status_code=status,
                 existed=same_name is not None, request_body=body)
    return Response(status, _assignment_view(assignment))


@route("DELETE", "{scope*}" + _RA + "/{name}", action=RA_DELETE, attributes=assignment_attributes)
def delete_role_assignment(req: Request) -> Response:
    """Delete; 204 when there is nothing to delete, as ARM answers."""
    world = req.world
    _check_subscription(world, _scope(req))
    removed = world.delete(req.path)
    if removed is None:
        return Response(204)
    record_write(req, resource_id=removed["id"], operation_name=RA_DELETE, status_code=200, existed=True,
                 delete=True)
    return Response(200, _assignment_view(removed))

