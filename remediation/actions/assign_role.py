"""``assign-role``: a pull role for the group's own identity, at exactly a registry's scope.

The only roles are AcrPull and Container Registry Repository Reader. ``params`` are exactly
``scope`` (the registry), ``roleDefinitionId`` (the role in the registry's subscription),
``principalId`` (an identity attached to the group), ``principalType`` (``ServicePrincipal``) and
``name`` (deterministic for scope, principal, role and condition). A Repository Reader also has
``condition`` and ``conditionVersion`` (``2.0``): exactly :func:`repository_condition` of
repositories the group pulls from that registry and the principal cannot already read, never none
(that would grant every repository); AcrPull never has a condition. No other assignment of the same
role to the same principal may exist at the scope (Azure allows one, whatever its condition). The
role fixes build it with :func:`assign_role`; the gate re-derives every value here to refuse a
tampered action.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from remediation.actions import FixKind, declare, find_registry, is_registry_id
from remediation.errors import InputError
from remediation.model import Action, Context
from remediation.naming import REGISTRY_TYPE, follows_naming_rules, is_guid, shell
from remediation.permissions import explain_repository_read
from remediation.resource_ids import parse_resource_id

ACR_PULL_ROLE_GUID = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PULL_ROLE_NAME = "AcrPull"
REPOSITORY_READER_ROLE_GUID = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
"""The built-in role's id as Azure's built-in role list gives it (MicrosoftDocs azure-docs
``articles/role-based-access-control/built-in-roles/containers.md``, ms.date 2025-06-30, commit
0088bfa77543e07f8a41771de8db977ddfc62e1d). Built-in roles "have the same role ID across clouds" and
keep it when renamed (``articles/role-based-access-control/role-definitions.md``, ms.date 2025-03-30,
the role properties table), so the app names both roles by id and never looks them up by name."""
REPOSITORY_READER_ROLE_NAME = "Container Registry Repository Reader"
PARAMS = frozenset({"scope", "roleDefinitionId", "principalId", "principalType", "name"})
CONDITION_PARAMS = frozenset({"condition", "conditionVersion"})
CONDITION_VERSION = "2.0"
_REPOSITORY_NAME = "Microsoft.ContainerRegistry/registries/repositories:name"
_CONDITIONED_VALUE = re.compile(r"StringEqualsIgnoreCase '([^']*)'")

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


def repository_condition(repositories: Sequence[str]) -> str:
    """The condition that limits a repository role to exactly ``repositories`` (sorted, deduplicated).

    The form Azure documents, with the request attribute and one ``StringEqualsIgnoreCase`` per
    repository joined by ``OR`` (MicrosoftDocs azure-management-docs,
    container-registry-rbac-abac-repository-permissions.md, 2025-05-01: "Scope role assignment to a
    specific repository" and the multiple-expression example); ``conditionVersion`` is 2.0.
    """
    names = " OR ".join(f"@Request[{_REPOSITORY_NAME}] StringEqualsIgnoreCase '{name}'"
                        for name in sorted({r.lower() for r in repositories}))
    return ("((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND "
            "!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR "
            f"({names}))")


def group_repositories(ctx: Context, registry_id: str) -> frozenset[str]:
    """The repositories (lower case) the container group pulls from the registry ``registry_id``."""
    registry = find_registry(ctx, registry_id)
    if registry is None or ctx.definition is None:
        return frozenset()
    return frozenset(i.repository.lower() for i in ctx.definition.images
                     if i.registry == registry.login_server.lower())


def assignment_name(scope: str, principal_id: str, role_guid: str, condition: str | None = None) -> str:
    """A deterministic assignment GUID, so a re-run PUTs the same assignment instead of a duplicate.

    A conditioned assignment's name also depends on its condition, so a grant for other
    repositories is a new assignment and never rewrites an existing one.
    """
    key = f"{scope.lower()}|{principal_id.lower()}|{role_guid.lower()}"
    if condition is not None:
        key += f"|{condition}"
    return str(uuid.uuid5(_ASSIGNMENT_NAMESPACE, key))


def assign_role(registry_id: str, principal_id: str, role_guid: str, role_name: str, cause: str,
                repositories: Sequence[str] = ()) -> Action:
    """A role assignment of ``role_guid`` to ``principal_id`` at exactly the registry's scope.

    With ``repositories``, conditioned (:func:`repository_condition`) to exactly those.
    """
    condition = repository_condition(repositories) if repositories else None
    params = {
        "scope": registry_id,
        "roleDefinitionId": role_definition_id(registry_id, role_guid),
        "principalId": principal_id,
        "principalType": "ServicePrincipal",
        "name": assignment_name(registry_id, principal_id, role_guid, condition),
    }
    detail = f"assign {role_name} to principal {principal_id} at registry scope {registry_id}"
    if condition is not None:
        params.update(condition=condition, conditionVersion=CONDITION_VERSION)
        detail += f", limited to repositories {', '.join(sorted({r.lower() for r in repositories}))}"
    return Action(kind=ASSIGN_ROLE.name, target=registry_id, detail=detail, params=params, cause=cause)


def _condition_refusal(action: Action, ctx: Context, role_guid: str) -> str | None:
    p = action.params
    reader = role_guid != ACR_PULL_ROLE_GUID
    if not reader:
        return None if set(p) == PARAMS else f"AcrPull is assigned without a condition; params must be exactly " \
            f"{sorted(PARAMS)}, got {sorted(p)}"
    if set(p) != PARAMS | CONDITION_PARAMS:
        return (f"a Repository Reader is assigned only with a repository condition; params must be exactly "
                f"{sorted(PARAMS | CONDITION_PARAMS)}, got {sorted(p)}")
    if p["conditionVersion"] != CONDITION_VERSION:
        return f"conditionVersion must be {CONDITION_VERSION}, got {p['conditionVersion']!r}"
    condition = str(p["condition"])
    named = frozenset(_CONDITIONED_VALUE.findall(condition))
    pulled = group_repositories(ctx, action.target)
    if not named or not named <= pulled or condition != repository_condition(sorted(named)):
        return (f"the condition is not exactly the documented repository condition for repositories the group "
                f"pulls from {action.target} ({', '.join(sorted(pulled)) or 'none'})")
    readable = sorted(named & _readable_repositories(action, ctx))
    if readable:
        return (f"the condition is wider than needed: principal {p['principalId']} can already read "
                f"{', '.join(readable)}; an additional assignment names only the repositories it cannot read")
    return None


def _readable_repositories(action: Action, ctx: Context) -> frozenset[str]:
    """The repositories the group pulls that the action's principal can already read through other assignments."""
    registry = find_registry(ctx, action.target)
    principal = str(action.params["principalId"]).lower()
    others = [a for a in ctx.assignments.get(principal, ())
              if a.id.rstrip("/").rsplit("/", 1)[-1].lower() != str(action.params["name"]).lower()]
    if registry is None:
        return frozenset()
    return frozenset(r for r in group_repositories(ctx, action.target)
                     if any(v.grants for v in explain_repository_read(
                         others, ctx.role_definitions, registry.id, r, custom_wildcards=ctx.rbac.custom_wildcards)))


def _duplicate(action: Action, ctx: Context, role_guid: str) -> str | None:
    """Another assignment of the same role to the same principal at exactly this scope, if one exists.

    Azure allows one per (principal, role, scope), conditions aside (MicrosoftDocs azure-docs
    ``articles/role-based-access-control/conditions-faq.md``, ms.date 2023-05-09): the PUT would be
    answered ``RoleAssignmentExists``, which the applier counts as done, so it would report a grant
    that was never made.
    """
    principal = str(action.params["principalId"]).lower()
    name = str(action.params["name"]).lower()
    for assignment in ctx.assignments.get(principal, ()):
        same_scope = assignment.scope.rstrip("/").lower() == action.target.rstrip("/").lower()
        other = assignment.id.rstrip("/").rsplit("/", 1)[-1].lower() != name
        if same_scope and other and assignment.role_guid == role_guid \
                and assignment.principal_id.lower() == principal:
            return assignment.id
    return None


def _invariant(action: Action, ctx: Context) -> str | None:
    p = action.params
    if not PARAMS <= set(p) <= PARAMS | CONDITION_PARAMS:
        return f"assign-role params must be exactly {sorted(PARAMS)} (and a condition), got {sorted(p)}"
    if not is_registry_id(action.target):
        return f"role assignments are made only on a registry, not {action.target}"
    if str(p["scope"]).rstrip("/").lower() != action.target.lower():
        return f"scope {p['scope']} is not exactly the target registry {action.target}"
    if find_registry(ctx, action.target) is None:
        return f"{action.target} is not one of the container group's registries"
    role_guid = str(p["roleDefinitionId"]).rstrip("/").rsplit("/", 1)[-1].lower()
    if role_guid not in grantable_role_guids(ctx):
        return f"role {role_guid} is neither AcrPull nor Container Registry Repository Reader"
    refusal = _condition_refusal(action, ctx, role_guid)
    if refusal is not None:
        return refusal
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
    condition = str(p["condition"]) if "condition" in p else None
    if p["name"] != assignment_name(action.target, principal, role_guid, condition):
        return "the assignment name is not the deterministic one for (scope, principal, role, condition)"
    duplicate = _duplicate(action, ctx, role_guid)
    if duplicate is not None:
        return (f"{duplicate} already assigns this role to principal {principal} at exactly {action.target}; Azure "
                "keeps one assignment per principal, role and scope, whatever its condition")
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
        and ("condition" not in p or p.get("conditionVersion") == CONDITION_VERSION)
    )
    if not safe:
        return None
    words = ["az", "role", "assignment", "create", "--assignee-object-id", str(p["principalId"]),
             "--assignee-principal-type", "ServicePrincipal", "--role", role, "--scope", action.target]
    if p.get("condition"):
        words += ["--condition", str(p["condition"]), "--condition-version", CONDITION_VERSION]
    return shell(*words)


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
