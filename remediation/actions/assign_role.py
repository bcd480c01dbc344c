"""``assign-role``: a pull role for the group's own identity, at exactly a registry's scope.

The only roles are AcrPull and Container Registry Repository Reader. ``params`` are exactly
``scope`` (the registry), ``roleDefinitionId`` (the role in the registry's subscription),
``principalId`` (an identity attached to the group), ``principalType`` (``ServicePrincipal``) and
``name`` (deterministic for scope, principal and role). The role fixes build it with
:func:`assign_role`; the gate re-derives every value here to refuse a tampered action.
"""

from __future__ import annotations

import uuid

from remediation.actions import FixKind, declare, find_registry, is_registry_id
from remediation.errors import InputError
from remediation.model import Action, Context
from remediation.naming import REGISTRY_TYPE, follows_naming_rules, is_guid, shell
from remediation.resource_ids import parse_resource_id

ACR_PULL_ROLE_GUID = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PULL_ROLE_NAME = "AcrPull"
REPOSITORY_READER_ROLE_GUID = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
"""Fallback only: the id is from public deployment scripts, so the name lookup comes first."""
REPOSITORY_READER_ROLE_NAME = "Container Registry Repository Reader"
PARAMS = frozenset({"scope", "roleDefinitionId", "principalId", "principalType", "name"})

_ASSIGNMENT_NAMESPACE = uuid.UUID("044ab51f-c9ce-5548-8d92-daade166016d")
"""uuid5(NAMESPACE_URL, "urn:aci-acr-pull-remediation:role-assignment"); never change it, or
re-runs stop recognising their own earlier assignments."""


def repository_reader_guid(ctx: Context) -> str:
    """The Repository Reader role's GUID as the tenant lists it, else the known built-in id."""
    for guid, role in sorted(ctx.role_definitions.items()):
        if role.role_name.lower() == REPOSITORY_READER_ROLE_NAME.lower() and role.role_type == "BuiltInRole":
            return (role.guid or guid).lower()
    return REPOSITORY_READER_ROLE_GUID


def grantable_role_guids(ctx: Context) -> frozenset[str]:
    """The only roles the app ever assigns."""
    return frozenset({ACR_PULL_ROLE_GUID, REPOSITORY_READER_ROLE_GUID, repository_reader_guid(ctx)})


def subscription_of(resource_id: str) -> str:
    """The subscription id of an ARM resource id (``""`` when it has none)."""
    try:
        return parse_resource_id(resource_id).subscription
    except InputError:
        return ""


def role_definition_id(registry_id: str, role_guid: str) -> str:
    """The role definition id in the registry's own subscription, as a role assignment PUT wants it."""
    subscription = subscription_of(registry_id)
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}"


def assignment_name(scope: str, principal_id: str, role_guid: str) -> str:
    """A deterministic assignment GUID, so a re-run PUTs the same assignment instead of a duplicate."""
    key = f"{scope.lower()}|{principal_id.lower()}|{role_guid.lower()}"
    return str(uuid.uuid5(_ASSIGNMENT_NAMESPACE, key))


def assign_role(registry_id: str, principal_id: str, role_guid: str, role_name: str, cause: str) -> Action:
    """A role assignment of ``role_guid`` to ``principal_id`` at exactly the registry's scope."""
    return Action(
        kind=ASSIGN_ROLE.name,
        target=registry_id,
        detail=f"assign {role_name} to principal {principal_id} at registry scope {registry_id}",
        params={
            "scope": registry_id,
            "roleDefinitionId": role_definition_id(registry_id, role_guid),
            "principalId": principal_id,
            "principalType": "ServicePrincipal",
            "name": assignment_name(registry_id, principal_id, role_guid),
        },
        cause=cause,
    )


def _invariant(action: Action, ctx: Context) -> str | None:
    p = action.params
    if set(p) != PARAMS:
        return f"assign-role params must be exactly {sorted(PARAMS)}, got {sorted(p)}"
    if not is_registry_id(action.target):
        return f"role assignments are made only on a registry, not {action.target}"
    if str(p["scope"]).rstrip("/").lower() != action.target.lower():
        return f"scope {p['scope']} is not exactly the target registry {action.target}"
    if find_registry(ctx, action.target) is None:
        return f"{action.target} is not one of the container group's registries"
    role_guid = str(p["roleDefinitionId"]).rstrip("/").rsplit("/", 1)[-1].lower()
    if role_guid not in grantable_role_guids(ctx):
        return f"role {role_guid} is neither AcrPull nor Container Registry Repository Reader"
    if str(p["roleDefinitionId"]).lower() != role_definition_id(action.target, role_guid).lower():
        return f"role definition {p['roleDefinitionId']} is not in the registry's subscription"
    if p["principalType"] != "ServicePrincipal":
        return f"principalType must be ServicePrincipal, got {p['principalType']!r}"
    principal = str(p["principalId"]).lower()
    if principal not in {(i.principal_id or "").lower() for i in ctx.identities.values()}:
        return f"principal {principal} is not an identity used by the container group"
    attached = {u.lower() for u in (ctx.definition.user_assigned_identities if ctx.definition else ())}
    if not any((i.principal_id or "").lower() == principal and i.id.lower() in attached
               for i in ctx.identities.values()):
        return f"principal {principal} is not an identity attached to the container group"
    if p["name"] != assignment_name(action.target, principal, role_guid):
        return "the assignment name is not the deterministic one for (scope, principal, role)"
    return None


def _command(action: Action) -> str | None:
    p = action.params
    role = str(p.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
    safe = (
        role.lower() in (ACR_PULL_ROLE_GUID, REPOSITORY_READER_ROLE_GUID)
        and str(p.get("scope", "")).lower() == action.target.lower()
        and follows_naming_rules(action.target, REGISTRY_TYPE)
        and is_guid(p.get("principalId"))
        and p.get("principalType") == "ServicePrincipal"
    )
    if not safe:
        return None
    return shell("az", "role", "assignment", "create", "--assignee-object-id", str(p["principalId"]),
                 "--assignee-principal-type", "ServicePrincipal", "--role", role, "--scope", action.target)


ASSIGN_ROLE = declare(FixKind(
    name="assign-role",
    order=10,
    target="registry",
    writes=True,
    needs_redeploy=True,
    waits_for_propagation=True,
    invariant=_invariant,
    command=_command,
))
