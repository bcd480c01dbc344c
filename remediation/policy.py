"""The policy gate: which planned actions may be applied. Pure; the last word before any write.

:func:`gate` returns every action with a status: ``planned`` (allowed; in a dry run, what would
be done) or ``skipped`` with a detail naming the rule that refused it. When a whole-run rule
refuses, every action is skipped and :attr:`Gate.skip_reason` says why (the report's outcome is
then ``skipped``).

Whole-run rules: the resource lies outside ``REMEDIATION_ALLOWED_SCOPES``; the container group
carries the opt-out tag with value ``off``; the failed write was made by the remediator itself
(loop guard).

Per-action rules, in order: the invariants (:func:`invariant_violation`, checked on every action
whatever the settings); a VNet or Windows limitation finding makes every fix pointless; the attempt
limit; a registry outside the allowed scopes or opted out; ``REMEDIATION_FIX_TRUSTED_SERVICES=false``;
a redeploy without a definition, or with nothing changed for it to pick up.

A ``propose-definition`` stays ``planned`` as a proposal for a person. It is applied only with
``REMEDIATION_APPLY_DEFINITION_FIXES=true``, when it is complete and lost no secret to redaction:
then :attr:`Gate.redeploy_definition` holds its body, which the redeploy deploys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from remediation.model import MIN_IDENTITY_API_VERSION, Action, Context, Finding
from remediation.plan.enable_trusted_services import TRUSTED_SERVICES_PATCH
from remediation.plan.roles import (
    assignment_name,
    find_registry,
    grantable_role_guids,
    is_registry_id,
    role_definition_id,
)
from remediation.settings import Settings

LIMITATION_CODES = ("ACI_VNET_UNSUPPORTED", "ACI_WINDOWS_UNSUPPORTED")
WRITING_KINDS = frozenset({"assign-role", "enable-trusted-services", "redeploy"})
ASSIGN_ROLE_PARAMS = frozenset({"scope", "roleDefinitionId", "principalId", "principalType", "name"})


@dataclass(frozen=True)
class Gate:
    actions: tuple[Action, ...]
    dry_run: bool = False
    skip_reason: str | None = None
    redeploy_definition: dict[str, Any] | None = None
    """The corrected body the redeploy should deploy (a proposal allowed to be applied), else None."""
    decided_at: str = ""

    @property
    def to_apply(self) -> tuple[Action, ...]:
        """The writes the engine may perform, in order; empty in a dry run or a skipped run."""
        if self.dry_run or self.skip_reason:
            return ()
        return tuple(a for a in self.actions if a.status == "planned" and a.kind in WRITING_KINDS)


def gate(
    actions: Sequence[Action],
    ctx: Context,
    findings: Sequence[Finding],
    settings: Settings,
    *,
    attempts_in_window: int = 0,
    now: datetime | None = None,
) -> Gate:
    """Decide every action; ``attempts_in_window`` counts earlier fix attempts for this group."""
    decided_at = (now or datetime.now(UTC)).isoformat()
    run_refusal = _run_refusal(ctx, settings)
    if run_refusal:
        skipped = tuple(_skip(a, run_refusal) for a in actions)
        return Gate(skipped, dry_run=settings.dry_run, skip_reason=run_refusal, decided_at=decided_at)

    limitation = next((f.code for f in findings if f.code in LIMITATION_CODES), None)
    decided: list[Action] = []
    redeploy_definition: dict[str, Any] | None = None
    for action in actions:
        violation = invariant_violation(action, ctx)
        if violation:
            decided.append(_skip(action, f"refused: {violation}"))
        elif action.kind == "propose-definition":
            applicable, note = _proposal_applicable(action, settings)
            blocked = _action_refusal(action, ctx, settings, limitation, attempts_in_window) if applicable else None
            if blocked:
                applicable, note = False, f"proposed only: {blocked.removeprefix('skipped: ')}"
            if applicable:
                redeploy_definition = action.params["definition"]
            decided.append(replace(action, status="planned", detail=f"{action.detail} ({note})"))
        else:
            refusal = _action_refusal(action, ctx, settings, limitation, attempts_in_window)
            decided.append(_skip(action, refusal) if refusal else replace(action, status="planned"))

    decided = _drop_pointless_redeploy(decided, redeploy_definition is not None)
    return Gate(
        tuple(decided),
        dry_run=settings.dry_run,
        redeploy_definition=redeploy_definition,
        decided_at=decided_at,
    )


def invariant_violation(action: Action, ctx: Context) -> str | None:
    """Why ``action`` is not one the app may ever perform, or None. Independent of settings."""
    p = action.params
    if action.kind == "assign-role":
        if set(p) != ASSIGN_ROLE_PARAMS:
            return f"assign-role params must be exactly {sorted(ASSIGN_ROLE_PARAMS)}, got {sorted(p)}"
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
    if action.kind == "enable-trusted-services":
        if p != TRUSTED_SERVICES_PATCH:
            return f"enable-trusted-services may only write {TRUSTED_SERVICES_PATCH}, got {p}"
        if find_registry(ctx, action.target) is None:
            return f"{action.target} is not one of the container group's registries"
        return None
    if action.kind == "redeploy":
        if action.target.lower() != ctx.signal.resource_id.lower():
            return f"a redeploy may only target the failed group {ctx.signal.resource_id}"
        if not set(p) <= {"apiVersion"}:
            return f"redeploy params may only hold apiVersion, got {sorted(p)}"
        version = p.get("apiVersion")
        if version is not None and (not isinstance(version, str) or version[:10] < MIN_IDENTITY_API_VERSION):
            return f"redeploy api-version {version!r} is older than {MIN_IDENTITY_API_VERSION}"
        return None
    if action.kind == "propose-definition":
        if action.target.lower() != ctx.signal.resource_id.lower():
            return f"a proposal may only concern the failed group {ctx.signal.resource_id}"
        if not isinstance(p.get("definition"), dict):
            return "a proposal must carry the corrected definition"
        return None
    return f"unknown action kind {action.kind!r}"


def opted_out(tags: dict[str, Any] | None, tag_name: str) -> bool:
    """Whether ``tags`` carry ``tag_name`` (case-insensitive) with the value ``off``."""
    return any(str(k).lower() == tag_name.lower() and str(v).strip().lower() == "off" for k, v in (tags or {}).items())


def _run_refusal(ctx: Context, settings: Settings) -> str | None:
    signal = ctx.signal
    if not settings.allows_scope(signal.resource_id):
        return f"{signal.resource_id} is outside REMEDIATION_ALLOWED_SCOPES"
    if any(opted_out(tags, settings.opt_out_tag) for tags in _group_tags(ctx)):
        return f"the container group carries the opt-out tag {settings.opt_out_tag}=off"
    caller, me = (signal.caller_object_id or "").lower(), (settings.remediator_principal_id or "").lower()
    if caller and caller == me:
        return "loop guard: the failed write was made by the remediator itself (REMEDIATOR_PRINCIPAL_ID)"
    return None


def _group_tags(ctx: Context) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if ctx.definition is not None:
        found.append(ctx.definition.tags)
        body_tags = ctx.definition.body.get("tags")
        if isinstance(body_tags, dict):
            found.append(body_tags)
    if ctx.existing_group is not None and isinstance(ctx.existing_group.get("tags"), dict):
        found.append(ctx.existing_group["tags"])
    return found


def _action_refusal(
    action: Action, ctx: Context, settings: Settings, limitation: str | None, attempts: int
) -> str | None:
    if limitation:
        return f"skipped: the limitation {limitation} makes the fix pointless"
    if attempts >= settings.max_attempts:
        return (
            f"skipped: {attempts} attempts in the last {settings.attempt_window_minutes} minutes "
            f"(REMEDIATION_MAX_ATTEMPTS={settings.max_attempts})"
        )
    if action.kind in ("assign-role", "enable-trusted-services"):
        if not settings.allows_scope(action.target):
            return "skipped: the registry is outside REMEDIATION_ALLOWED_SCOPES"
        registry = find_registry(ctx, action.target)
        if registry is not None and opted_out(registry.tags, settings.opt_out_tag):
            return f"skipped: the registry carries the opt-out tag {settings.opt_out_tag}=off"
    if action.kind == "enable-trusted-services" and not settings.fix_trusted_services:
        return "skipped: REMEDIATION_FIX_TRUSTED_SERVICES is false (reported only)"
    if action.kind == "redeploy" and ctx.definition is None:
        return "skipped: no definition of the container group is available to redeploy from"
    return None


def _proposal_applicable(action: Action, settings: Settings) -> tuple[bool, str]:
    if not settings.apply_definition_fixes:
        return False, "proposed only: REMEDIATION_APPLY_DEFINITION_FIXES is false"
    if action.params.get("complete") is False:
        return False, "proposed only: it still holds a placeholder to fill in"
    if action.params.get("secretsRedacted"):
        return False, "proposed only: secrets were redacted from it, so it cannot be deployed as is"
    return True, "to be deployed by the redeploy (REMEDIATION_APPLY_DEFINITION_FIXES is true)"


def _drop_pointless_redeploy(actions: list[Action], proposal_applied: bool) -> list[Action]:
    """A redeploy that is no fix itself is skipped when nothing it depends on may be applied."""
    changes = proposal_applied or any(
        a.status == "planned" and a.kind in ("assign-role", "enable-trusted-services") for a in actions
    )
    if changes:
        return actions
    return [
        _skip(a, "skipped: nothing changed that a redeploy would pick up")
        if a.kind == "redeploy" and a.status == "planned" and not a.cause
        else a
        for a in actions
    ]


def _skip(action: Action, reason: str) -> Action:
    return replace(action, status="skipped", detail=f"{action.detail}: {reason}" if action.detail else reason)
