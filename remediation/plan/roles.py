"""The two pull roles the app may grant, and how a grant is spelled.

Shared by the role fixes (``assign_acr_pull``, ``assign_repository_reader``) and by the policy
gate, which re-derives every value here to refuse a tampered action. Nothing in this module is a
fix of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from remediation.model import SYSTEM_IDENTITY_REFERENCES, Action, Context, Finding, Registry

ACR_PULL_ROLE_GUID = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PULL_ROLE_NAME = "AcrPull"
REPOSITORY_READER_ROLE_GUID = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
"""Fallback only: the id is from public deployment scripts, so the name lookup comes first."""
REPOSITORY_READER_ROLE_NAME = "Container Registry Repository Reader"

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
    parts = [p for p in resource_id.split("/") if p]
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


def role_definition_id(registry_id: str, role_guid: str) -> str:
    """The role definition id in the registry's own subscription, as a role assignment PUT wants it."""
    subscription = subscription_of(registry_id)
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}"


def assignment_name(scope: str, principal_id: str, role_guid: str) -> str:
    """A deterministic assignment GUID, so a re-run PUTs the same assignment instead of a duplicate."""
    key = f"{scope.lower()}|{principal_id.lower()}|{role_guid.lower()}"
    return str(uuid.uuid5(_ASSIGNMENT_NAMESPACE, key))


def is_registry_id(resource_id: str) -> bool:
    """Exactly a registry, not a child (a wider or narrower scope is never a grant target)."""
    parts = [p.lower() for p in resource_id.split("/") if p]
    return (
        len(parts) == 8
        and parts[0] == "subscriptions"
        and parts[2] == "resourcegroups"
        and parts[4:7] == ["providers", "microsoft.containerregistry", "registries"]
    )


def assign_role(registry_id: str, principal_id: str, role_guid: str, role_name: str, cause: str) -> Action:
    """A role assignment of ``role_guid`` to ``principal_id`` at exactly the registry's scope."""
    return Action(
        kind="assign-role",
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


@dataclass(frozen=True)
class PullTarget:
    """A registry an identity must be able to pull from."""

    registry_id: str
    principal_id: str


def find_registry(ctx: Context, registry_id: str) -> Registry | None:
    """The registry in the context with this id (case-insensitive), if it was read."""
    wanted = registry_id.lower()
    return next((r for r in ctx.registries.values() if r is not None and r.id.lower() == wanted), None)


def pull_targets(finding: Finding, ctx: Context, *, abac: bool) -> list[PullTarget]:
    """Which (registry, principal) pairs a missing-pull-permission finding is about.

    The finding's evidence is read first (``registryId``, ``principalId``, and as filters
    ``loginServer``/``server`` and ``identity``/``identityId``); whatever it leaves open is taken
    from the group's registry credentials. Registries whose role-assignment mode does not match
    ``abac`` are left out, because the other role would not be honoured there.
    """
    ev = finding.evidence
    registry_id = _text(ev, "registryId")
    principal_id = _text(ev, "principalId")
    server = (_text(ev, "loginServer") or _text(ev, "server") or "").lower()
    identity = (_text(ev, "identity") or _text(ev, "identityId") or "").lower()

    if registry_id and principal_id:
        known = find_registry(ctx, registry_id)
        if known is not None and known.abac != abac:
            return []
        return [PullTarget(registry_id, principal_id.lower())]

    targets: list[PullTarget] = []
    credentials = ctx.definition.credentials if ctx.definition else ()
    for cred in credentials:
        cred_identity = (cred.identity or "").lower()
        if not cred.server or not cred_identity or cred_identity in SYSTEM_IDENTITY_REFERENCES:
            continue
        registry = ctx.registries.get(cred.server.lower())
        if registry is None or registry.abac != abac:
            continue
        if (server and cred.server.lower() != server) or (identity and cred_identity != identity):
            continue
        if registry_id and registry.id.lower() != registry_id.lower():
            continue
        found = ctx.identities.get(cred_identity)
        principal = principal_id or (found.principal_id if found else None)
        if principal:
            target = PullTarget(registry.id, principal.lower())
            if target not in targets:
                targets.append(target)
    return targets


def _text(evidence: dict[str, object], key: str) -> str | None:
    value = evidence.get(key)
    return value if isinstance(value, str) and value else None
