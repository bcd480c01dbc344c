"""Which (registry, principal) pairs a missing-pull-permission fix is for.

Shared by the role fixes (``assign_acr_pull``, ``assign_repository_reader``); the roles they grant
and how a grant is spelled are the ``assign-role`` kind's (``remediation.actions.assign_role``).
Nothing in this module is a fix of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from remediation.actions import find_registry
from remediation.model import SYSTEM_IDENTITY_REFERENCES, Context, Finding


@dataclass(frozen=True)
class PullTarget:
    """A registry an identity must be able to pull from."""

    registry_id: str
    principal_id: str


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
