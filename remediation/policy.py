"""The policy gate: which planned actions may be applied. Pure; the only place that decides a write.

:func:`early_refusal` runs first, on the signal alone, so a run it refuses makes no Azure call at
all: the group lies outside ``REMEDIATION_ALLOWED_SCOPES``, or the failed write was the
remediator's own (loop guard).

:func:`gate` then returns every action with a status: ``planned`` (allowed; in a dry run, what
would be done) or ``skipped`` with a detail naming the rule that refused it. When a whole-run
rule refuses, every action is skipped and :attr:`Gate.skip_reason` says why (the report's outcome
is then ``skipped``). Only :attr:`Gate.to_apply` is ever written (``remediation.azure``).

Rules for the kind of run, on the plan as given:

- a resumed run (an earlier one applied its fixes and stopped before redeploying) gets the redeploy
  it still owes, even though the checks no longer find the (now fixed) cause;
- a sweep never redeploys: a running group is not restarted, its next deployment picks the fix up.

Whole-run rules: the resource lies outside ``REMEDIATION_ALLOWED_SCOPES``; the container group
carries the opt-out tag with value ``off``; the failed write was made by the remediator itself
(loop guard).

Per-action rules, in order: the invariants (each kind's own, ``remediation.actions``, checked on
every action whatever the settings; an unknown kind is refused); a VNet or Windows limitation
finding makes every fix pointless; the attempt limit; a registry outside the allowed scopes or opted
out; ``REMEDIATION_FIX_TRUSTED_SERVICES=false``; a redeploy without a definition, or with nothing
changed for it to pick up.

A ``propose-definition`` stays ``planned`` as a proposal for a person. It is applied only with
``REMEDIATION_APPLY_DEFINITION_FIXES=true``, when it is complete and lost no secret to redaction:
then :attr:`Gate.redeploy_definition` holds its body, which the redeploy deploys.

Last, outside a dry run: a definition that came with a replay request is the caller's word, not
Azure's, so nothing is written for it unless ``REMEDIATION_REDEPLOY_REPLAYED_DEFINITIONS=true``
(a function key must not make the app deploy arbitrary containers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from remediation.actions import KINDS, find_registry
from remediation.actions.enable_trusted_services import ENABLE_TRUSTED_SERVICES
from remediation.actions.propose_definition import PROPOSE_DEFINITION
from remediation.actions.redeploy import REDEPLOY
from remediation.model import CURRENT_ACI_API_VERSION, Action, Context, FailureSignal, Finding
from remediation.settings import Settings

LIMITATION_CODES = ("ACI_VNET_UNSUPPORTED", "ACI_WINDOWS_UNSUPPORTED")
REPLAYED_DEFINITION_NOTE = ("diagnosis only: the definition came with the replay request "
                            "(REMEDIATION_REDEPLOY_REPLAYED_DEFINITIONS)")
SWEEP_NOTE = "a sweep does not redeploy; the group's next deployment uses the fix"


@dataclass(frozen=True)
class Gate:
    actions: tuple[Action, ...]
    dry_run: bool = False
    skip_reason: str | None = None
    redeploy_definition: dict[str, Any] | None = None
    """The corrected body the redeploy should deploy (a proposal allowed to be applied), else None."""
    decided_at: str = ""
    notes: tuple[str, ...] = ()
    """What the gate changed about the plan itself (e.g. a sweep's redeploy left out), for the report."""

    @property
    def to_apply(self) -> tuple[Action, ...]:
        """The writes the engine may perform, in order; empty in a dry run or a skipped run."""
        if self.dry_run or self.skip_reason:
            return ()
        return tuple(a for a in self.actions if a.status == "planned" and _writes(a))


def early_refusal(signal: FailureSignal, settings: Settings) -> str | None:
    """Why the run is refused before any Azure call (no reads outside the allowed scopes), or None."""
    if not settings.allows_scope(signal.resource_id):
        return "the container group is outside REMEDIATION_ALLOWED_SCOPES"
    if _own_write(signal, settings):
        return "the failed write was made by this app's own identity (loop guard)"
    return None


def gate(
    actions: Sequence[Action],
    ctx: Context,
    findings: Sequence[Finding],
    settings: Settings,
    *,
    attempts_in_window: int = 0,
    resume: bool = False,
    now: datetime | None = None,
) -> Gate:
    """Decide every action of the plan.

    ``attempts_in_window`` counts earlier fix attempts for this group; ``resume`` says an earlier
    run applied its fixes and stopped before the redeploy. The kind of run (``ctx.signal.schema``)
    and where the definition came from (``ctx.definition.source``) are read from ``ctx``.
    """
    decided_at = (now or datetime.now(UTC)).isoformat()
    planned, notes = _for_this_run(list(actions), ctx, resume)
    run_refusal = _run_refusal(ctx, settings)
    if run_refusal:
        skipped = tuple(_skip(a, run_refusal) for a in planned)
        return Gate(skipped, dry_run=settings.dry_run, skip_reason=run_refusal, decided_at=decided_at, notes=notes)

    limitation = next((f.code for f in findings if f.code in LIMITATION_CODES), None)
    decided: list[Action] = []
    redeploy_definition: dict[str, Any] | None = None
    for action in planned:
        violation = invariant_violation(action, ctx)
        if violation:
            decided.append(_skip(action, f"refused: {violation}"))
        elif action.kind == PROPOSE_DEFINITION.name:
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
    if not settings.dry_run and _replayed_definition(ctx, settings):
        decided = [_skip(a, REPLAYED_DEFINITION_NOTE) if a.status == "planned" and _writes(a) else a
                   for a in decided]
        redeploy_definition = None
    return Gate(
        tuple(decided),
        dry_run=settings.dry_run,
        redeploy_definition=redeploy_definition,
        decided_at=decided_at,
        notes=notes,
    )


def invariant_violation(action: Action, ctx: Context) -> str | None:
    """Why ``action`` is not one the app may ever perform, or None. Independent of settings."""
    kind = KINDS.get(action.kind)
    if kind is None:
        return f"unknown action kind {action.kind!r}"
    return kind.invariant(action, ctx)


def opted_out(tags: dict[str, Any] | None, tag_name: str) -> bool:
    """Whether ``tags`` carry ``tag_name`` (case-insensitive) with the value ``off``."""
    return any(str(k).lower() == tag_name.lower() and str(v).strip().lower() == "off" for k, v in (tags or {}).items())


def _writes(action: Action) -> bool:
    kind = KINDS.get(action.kind)
    return kind is not None and kind.writes


def _for_this_run(actions: list[Action], ctx: Context, resume: bool) -> tuple[list[Action], tuple[str, ...]]:
    """The plan as this kind of run may carry it out: a resume adds its redeploy, a sweep drops any."""
    redeploys = any(a.kind == REDEPLOY.name for a in actions)
    if resume and ctx.definition is not None and not redeploys:
        actions.append(Action(kind=REDEPLOY.name, target=ctx.signal.resource_id, cause="resume",
                              detail="finish the remediation an earlier run left after its fixes",
                              params={"apiVersion": CURRENT_ACI_API_VERSION}))
    if ctx.signal.schema == "sweep" and any(a.kind == REDEPLOY.name for a in actions):
        return [a for a in actions if a.kind != REDEPLOY.name], (SWEEP_NOTE,)
    return actions, ()


def _own_write(signal: FailureSignal, settings: Settings) -> bool:
    caller, me = (signal.caller_object_id or "").lower(), (settings.remediator_principal_id or "").lower()
    return bool(caller) and caller == me


def _run_refusal(ctx: Context, settings: Settings) -> str | None:
    signal = ctx.signal
    if not settings.allows_scope(signal.resource_id):
        return f"{signal.resource_id} is outside REMEDIATION_ALLOWED_SCOPES"
    if any(opted_out(tags, settings.opt_out_tag) for tags in _group_tags(ctx)):
        return f"the container group carries the opt-out tag {settings.opt_out_tag}=off"
    if _own_write(signal, settings):
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
    if KINDS[action.kind].target == "registry":
        if not settings.allows_scope(action.target):
            return "skipped: the registry is outside REMEDIATION_ALLOWED_SCOPES"
        registry = find_registry(ctx, action.target)
        if registry is not None and opted_out(registry.tags, settings.opt_out_tag):
            return f"skipped: the registry carries the opt-out tag {settings.opt_out_tag}=off"
    if action.kind == ENABLE_TRUSTED_SERVICES.name and not settings.fix_trusted_services:
        return "skipped: REMEDIATION_FIX_TRUSTED_SERVICES is false (reported only)"
    if action.kind == REDEPLOY.name and ctx.definition is None:
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
        a.status == "planned" and KINDS[a.kind].writes and KINDS[a.kind].needs_redeploy
        for a in actions if a.kind in KINDS
    )
    if changes:
        return actions
    return [
        _skip(a, "skipped: nothing changed that a redeploy would pick up")
        if a.kind == REDEPLOY.name and a.status == "planned" and not a.cause
        else a
        for a in actions
    ]


def _replayed_definition(ctx: Context, settings: Settings) -> bool:
    """Whether the definition is the replay caller's word and may not drive a write."""
    definition = ctx.definition
    return (definition is not None and not definition.recorded_by_azure and definition.complete
            and not settings.redeploy_replayed_definitions)


def _skip(action: Action, reason: str) -> Action:
    return replace(action, status="skipped", detail=f"{action.detail}: {reason}" if action.detail else reason)
