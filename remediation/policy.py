"""The policy gate: which planned actions may be applied. Pure; the only place that decides a write.

:func:`early_refusal` runs first, on the signal alone, so a run it refuses makes no Azure call at
all: the group lies outside ``REMEDIATION_ALLOWED_SCOPES``, or an Event Grid delivery's claims
name the remediator (loop guard; a replay's claims are its caller's word and decide nothing).

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
(loop guard: the caller of the failed write in the Activity Log is ``REMEDIATOR_PRINCIPAL_ID``).

The app acts for the *deployer* (CONTRACT.md §1, "Who may be given a fix"): the caller the
Activity Log recorded for the failed write (a sweep: the last caller of the group's writes other
than the app), never a claim from a replay body. It gives nobody access the deployer could not
have given or used itself.

Per-action rules, in order: the invariants (each kind's own, ``remediation.actions``, checked on
every action whatever the settings; an unknown kind is refused); the attempt limit; a registry
outside the allowed scopes or opted out; ``REMEDIATION_FIX_TRUSTED_SERVICES=false``; a pull role on
a registry the deployer cannot itself pull from, or a network change on one it may not write (a registry tagged
``REMEDIATION_OPT_OUT_TAG=allow`` consents to both, :func:`consents`); a redeploy without a
definition, or with nothing changed for it to pick up. Where the deployer lacks the right,
:attr:`Gate.cause_evidence` says which, for the cause's evidence. Then the blockers Azure would
answer with (:mod:`remediation.blockers`), predicted rather than hit: a ``ReadOnly`` lock at the
target or above (the registry for a role assignment or a network change, the group for a
redeploy), a deny assignment covering the write for the app's own identity
(``REMEDIATOR_PRINCIPAL_ID``), an enforced Azure Policy ``Deny`` matching the registry as a network
change would leave it. Each such action is skipped with the blocker named; a policy that would
deny or modify the registry's network properties is also a :attr:`Gate.warnings` entry.

A ``propose-definition`` stays ``planned`` as a proposal for a person. It is applied only with
``REMEDIATION_APPLY_DEFINITION_FIXES=true``, when it is complete, lost no secret to redaction and
attaches no identity to the group (the app never attaches one): then
:attr:`Gate.redeploy_definition` holds its body, which the redeploy deploys.

Then, in a dry run too: nothing is written unless the failed write is still the group's latest
intent: its Activity Log record was read, no successful write or delete of the group by anyone
but the app is recorded after it, and the group does not now run another definition started
since. A superseded event or replay is diagnosed, never redeployed.

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
from remediation.actions.assign_role import ASSIGN_ROLE
from remediation.actions.enable_trusted_services import ENABLE_TRUSTED_SERVICES
from remediation.actions.propose_definition import PROPOSE_DEFINITION
from remediation.actions.redeploy import REDEPLOY
from remediation.blockers import deny_refusing, lock_refusing, policy_verdicts, registry_after
from remediation.checks import UNKNOWN
from remediation.model import (
    CURRENT_ACI_API_VERSION,
    Action,
    Context,
    FailureSignal,
    Registry,
    Trigger,
    WriteRecord,
)
from remediation.permissions import REGISTRY_WRITE, Right, pull_right, registry_write_right
from remediation.settings import Settings

REPLAYED_DEFINITION_NOTE = ("diagnosis only: the definition came with the replay request "
                            "(REMEDIATION_REDEPLOY_REPLAYED_DEFINITIONS)")
SWEEP_NOTE = "a sweep does not redeploy; the group's next deployment uses the fix"
WRITE_OPERATIONS = {
    ASSIGN_ROLE.name: "Microsoft.Authorization/roleAssignments/write",
    ENABLE_TRUSTED_SERVICES.name: REGISTRY_WRITE,
    REDEPLOY.name: "Microsoft.ContainerInstance/containerGroups/write",
}
"""The ARM operation each writing kind performs at its target, which deny assignments are checked for."""
IDENTITY_ASSIGN = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"
"""What a container group PUT needs on each user-assigned identity it attaches."""


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
    cause_evidence: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    """(cause code, registry id, evidence): what the gate found about the deployer's rights on that
    registry, to add to the evidence of the cause's finding for it."""
    retryable: bool = False
    """Writes were refused for want of a record a later attempt may read (the failed write's, in
    an Activity Log that lags)."""
    warnings: tuple[str, ...] = ()
    """Azure Policy assignments that would deny or modify what a fix writes, for the report."""

    @property
    def to_apply(self) -> tuple[Action, ...]:
        """The writes the engine may perform, in order; empty in a dry run or a skipped run."""
        if self.dry_run or self.skip_reason:
            return ()
        return tuple(a for a in self.actions if a.status == "planned" and _writes(a))


def early_refusal(signal: FailureSignal, settings: Settings, *, trigger: Trigger) -> str | None:
    """Why the run is refused before any Azure call (no reads outside the allowed scopes), or None.

    Only an Event Grid delivery's claims are ARM's; a replayed event's are whatever its caller
    wrote, so they never skip a run (the gate's loop guard reads the Activity Log instead).
    """
    if not settings.allows_scope(signal.resource_id):
        return "the container group is outside REMEDIATION_ALLOWED_SCOPES"
    if trigger == "eventgrid" and _is_remediator(signal.caller_object_id, settings):
        return "the failed write was made by this app's own identity (loop guard)"
    return None


def gate(
    actions: Sequence[Action],
    ctx: Context,
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

    deployer = deployer_of(ctx, settings)
    decided: list[Action] = []
    evidence: list[tuple[str, str, dict[str, Any]]] = []
    redeploy_definition: dict[str, Any] | None = None
    for action in planned:
        violation = invariant_violation(action, ctx)
        if violation:
            decided.append(_skip(action, f"refused: {violation}"))
        elif action.kind == PROPOSE_DEFINITION.name:
            applicable, note = _proposal_applicable(action, ctx, settings)
            blocked = _action_refusal(action, ctx, settings, attempts_in_window) if applicable else None
            if blocked:
                applicable, note = False, f"proposed only: {blocked.removeprefix('skipped: ')}"
            if applicable:
                redeploy_definition = action.params["definition"]
            decided.append(replace(action, status="planned", detail=f"{action.detail} ({note})"))
        else:
            refusal = _action_refusal(action, ctx, settings, attempts_in_window)
            if refusal is None:
                refusal, found = _deployer_refusal(action, ctx, settings, deployer)
                if found is not None:
                    evidence.append((action.cause, action.target, {"deployer": found}))
            refusal = refusal or _blocker_refusal(action, ctx, settings)
            decided.append(_skip(action, refusal) if refusal else replace(action, status="planned"))

    decided = _drop_pointless_redeploy(decided, redeploy_definition is not None)
    stale, retryable = _intent_refusal(ctx, settings)
    if stale:
        decided = [_skip(a, stale) if a.status == "planned" and _writes(a) else a for a in decided]
        redeploy_definition = None
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
        cause_evidence=tuple(evidence),
        retryable=retryable,
        warnings=_policy_warnings(planned, ctx),
    )


def invariant_violation(action: Action, ctx: Context) -> str | None:
    """Why ``action`` is not one the app may ever perform, or None. Independent of settings."""
    kind = KINDS.get(action.kind)
    if kind is None:
        return f"unknown action kind {action.kind!r}"
    return kind.invariant(action, ctx)


def opted_out(tags: dict[str, Any] | None, tag_name: str) -> bool:
    """Whether ``tags`` carry ``tag_name`` (case-insensitive) with the value ``off``."""
    return _tagged(tags, tag_name, "off")


def consents(tags: dict[str, Any] | None, tag_name: str) -> bool:
    """Whether a registry's ``tags`` carry ``tag_name`` with the value ``allow``: its owner's standing
    consent to pull grants and network changes for any deployer in the allowed scopes."""
    return _tagged(tags, tag_name, "allow")


def deployer_of(ctx: Context, settings: Settings) -> str | None:
    """The principal the app acts for: the caller the Activity Log recorded for the failed write;
    for a sweep, the newest caller of the group's recorded writes other than the app itself.
    None where the log holds no such record."""
    if ctx.signal.schema == "sweep":
        return next((w.caller for w in ctx.group_writes or ()
                     if w.caller and not _is_remediator(w.caller, settings)), None)
    return ctx.failed_write.caller if ctx.failed_write is not None else None


def _tagged(tags: dict[str, Any] | None, tag_name: str, value: str) -> bool:
    return any(str(k).lower() == tag_name.lower() and str(v).strip().lower() == value for k, v in (tags or {}).items())


def _writes(action: Action) -> bool:
    kind = KINDS.get(action.kind)
    return kind is not None and kind.writes


def _for_this_run(actions: list[Action], ctx: Context, resume: bool) -> tuple[list[Action], tuple[str, ...]]:
    """The plan as this kind of run may carry it out: a resume adds its redeploy, a sweep drops any."""
    if resume:
        # the fixes an earlier run applied explain the failure now found unexplained: the redeploy it
        # owes is the resume's own, not a retry of an unexplained failure (which the attempt refuses)
        actions = [a for a in actions if not (a.kind == REDEPLOY.name and a.cause == UNKNOWN.code)]
    redeploys = any(a.kind == REDEPLOY.name for a in actions)
    if resume and ctx.definition is not None and not redeploys:
        actions.append(Action(kind=REDEPLOY.name, target=ctx.signal.resource_id, cause="resume",
                              detail="finish the remediation an earlier run left after its fixes",
                              params={"apiVersion": CURRENT_ACI_API_VERSION}))
    if ctx.signal.schema == "sweep" and any(a.kind == REDEPLOY.name for a in actions):
        return [a for a in actions if a.kind != REDEPLOY.name], (SWEEP_NOTE,)
    return actions, ()


def _is_remediator(principal_id: str | None, settings: Settings) -> bool:
    caller, me = (principal_id or "").lower(), (settings.remediator_principal_id or "").lower()
    return bool(caller) and caller == me


def _run_refusal(ctx: Context, settings: Settings) -> str | None:
    signal = ctx.signal
    if not settings.allows_scope(signal.resource_id):
        return f"{signal.resource_id} is outside REMEDIATION_ALLOWED_SCOPES"
    if any(opted_out(tags, settings.opt_out_tag) for tags in _group_tags(ctx)):
        return f"the container group carries the opt-out tag {settings.opt_out_tag}=off"
    if ctx.failed_write is not None and _is_remediator(ctx.failed_write.caller, settings):
        return ("loop guard: the Activity Log records the failed write as made by the remediator itself "
                "(REMEDIATOR_PRINCIPAL_ID)")
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
    action: Action, ctx: Context, settings: Settings, attempts: int
) -> str | None:
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
    if action.kind == REDEPLOY.name and action.cause == UNKNOWN.code:
        return _retry_refusal(settings, attempts)
    return None


def _retry_refusal(settings: Settings, attempts: int) -> str | None:
    """Why an unexplained failure is not redeployed: switched off, or already tried. "Once" counts the
    ledger's attempts for the group in the attempt window (the journal records one before the first
    write), so the retry's own failure, or the deployer's next failure of the group, is not retried."""
    if not settings.retry_unexplained:
        return "skipped: no cause was found, and REMEDIATION_RETRY_UNEXPLAINED is false"
    if attempts:
        return (f"skipped: an unexplained failure is redeployed once, and {attempts} attempt(s) on this group are "
                f"recorded in the last {settings.attempt_window_minutes} minutes")
    return None


def _deployer_refusal(action: Action, ctx: Context, settings: Settings,
                      deployer: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """Why the deployer may not be given this registry change, and what was found for the evidence.

    A pull role only where the deployer can itself pull from the registry; a network change only
    where it may write the registry; a registry tagged ``allow`` waives both.
    """
    registry = find_registry(ctx, action.target)
    if registry is None or action.kind not in (ASSIGN_ROLE.name, ENABLE_TRUSTED_SERVICES.name):
        return None, None
    if consents(registry.tags, settings.opt_out_tag):
        return None, {"principalId": deployer, "consent": f"registry tag {settings.opt_out_tag}=allow"}
    wants = "pull from" if action.kind == ASSIGN_ROLE.name else "write"
    if deployer is None:
        return (f"skipped: who made the failed write is not in the Activity Log, so whether they could "
                f"{wants} registry {registry.name} themselves is unknown"), None
    right = _deployer_right(action, ctx, deployer, registry)
    if right.holds:
        return None, right.as_evidence()
    gives = "give its identity pull" if action.kind == ASSIGN_ROLE.name else "open its network to trusted services"
    return (f"skipped: the deployer {deployer} cannot itself {wants} registry {registry.name} ({right.reason}), so "
            f"the app does not {gives}; someone who may, or the registry's owner (tag "
            f"{settings.opt_out_tag}=allow), can"), right.as_evidence()


def _deployer_right(action: Action, ctx: Context, deployer: str, registry: Registry) -> Right:
    assignments = ctx.assignments.get(deployer.lower(), ())
    if action.kind == ENABLE_TRUSTED_SERVICES.name:
        return registry_write_right(deployer, assignments, ctx.role_definitions, registry)
    repositories = sorted({i.repository for i in (ctx.definition.images if ctx.definition else ())
                           if i.registry == registry.login_server.lower()})
    # the deployer's pull is ACR's pull too: a custom role's wildcard counts only with ARM private link
    return pull_right(deployer, assignments, ctx.role_definitions, registry, repositories,
                      custom_wildcards=ctx.rbac.custom_wildcards)


def _blocker_refusal(action: Action, ctx: Context, settings: Settings) -> str | None:
    """Why Azure would refuse this write whoever asked: a lock, a deny assignment, a Deny policy."""
    operation = WRITE_OPERATIONS.get(action.kind)
    if operation is None:
        return None
    lock = lock_refusing(ctx.locks, action.target)
    if lock is not None:
        return (f"skipped: the {lock.level} lock {lock.id} on {lock.scope} would refuse this write "
                "(ScopeLocked); it can be made once the lock is removed")
    checks = [(operation, action.target)]
    if action.kind == REDEPLOY.name and ctx.definition is not None:
        # a group PUT with user-assigned identities is authorized for assigning each of them too
        checks += [(IDENTITY_ASSIGN, identity) for identity in ctx.definition.user_assigned_identities]
    for needed, at in checks:
        deny = deny_refusing(ctx.deny_assignments, settings.remediator_principal_id, needed, at)
        if deny is not None:
            return (f"skipped: the deny assignment '{deny.name}' ({deny.id}) at {deny.scope} denies {needed} "
                    "to the app's identity (DenyAssignmentAuthorizationFailed)")
    registry = find_registry(ctx, action.target) if action.kind == ENABLE_TRUSTED_SERVICES.name else None
    if registry is not None:
        after = registry_after(registry, action.params)
        denied = next((v for v in policy_verdicts(ctx.policy_assignments, after) if v.effect == "deny" and v.decided),
                      None)
        if denied is not None:
            return f"skipped: {denied.describe(registry.id)}"
    return None


def _policy_warnings(actions: Sequence[Action], ctx: Context) -> tuple[str, ...]:
    """Each policy that would deny or modify the registry a network fix writes, once."""
    found: list[str] = []
    for action in actions:
        registry = find_registry(ctx, action.target) if action.kind == ENABLE_TRUSTED_SERVICES.name else None
        if registry is not None:
            after = registry_after(registry, action.params)
            found += [v.describe(registry.id) for v in policy_verdicts(ctx.policy_assignments, after)]
    return tuple(dict.fromkeys(found))


def _intent_refusal(ctx: Context, settings: Settings) -> tuple[str | None, bool]:
    """Why the failed write is not (known to be) the group's latest intent, and whether a later
    attempt may know; (None, False) while it is. A sweep acts on no failed write."""
    failed = ctx.failed_write
    if ctx.signal.schema == "sweep":
        return None, False
    if failed is None:
        return ("skipped: the failed write is not in the Activity Log (yet), so who made it and whether it "
                "is still the group's latest intent are unknown"), True
    if ctx.group_writes is None:
        return ("skipped: the group's writes since the failure could not be read, so whether the failed write "
                "is still its latest intent is unknown"), False
    later = next((w for w in ctx.group_writes if w.succeeded and not _is_remediator(w.caller, settings)
                  and not _same_write(w, failed)), None)
    if later is not None:
        done = "deleted" if later.delete else "wrote"
        return (f"skipped: the failed write is no longer the group's latest intent: {later.caller} {done} the "
                f"group at {_when(later)}"), False
    running = _running_since(ctx, failed)
    if running:
        return f"skipped: the failed write is no longer the group's latest intent: the group now runs {running}", False
    return None, False


def _same_write(a: WriteRecord, b: WriteRecord) -> bool:
    return bool(a.correlation_id and b.correlation_id and a.correlation_id.lower() == b.correlation_id.lower())


def _when(write: WriteRecord) -> str:
    return write.at.isoformat() if write.at is not None else "an unknown time"


def _running_since(ctx: Context, failed: WriteRecord) -> str | None:
    """Another definition than the failed one, running in containers started after the failure.

    The live group backs the Activity Log up: a later write may not be in the log yet (it lags)."""
    group, definition = ctx.existing_group, ctx.definition
    if not group or definition is None or failed.at is None:
        return None
    props = group.get("properties") or {}
    containers = [c.get("properties") or {} for c in props.get("containers") or [] if isinstance(c, dict)]
    images = sorted(str(c.get("image", "")).lower() for c in containers)
    wanted = sorted(str((c.get("properties") or {}).get("image", "")).lower()
                    for c in (definition.body.get("properties") or {}).get("containers") or [] if isinstance(c, dict))
    if props.get("provisioningState") != "Succeeded" or images == wanted:
        return None
    for container in containers:
        started = ((container.get("instanceView") or {}).get("currentState") or {}).get("startTime")
        try:
            when = datetime.fromisoformat(str(started).replace("Z", "+00:00")) if started else None
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None and when > failed.at:
            return f"{', '.join(images)}, started at {when.isoformat()}"
    return None


def _identities_added(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The identities ``after`` attaches to the group that ``before`` does not."""
    def attached(body: dict[str, Any]) -> tuple[set[str], bool]:
        identity = body.get("identity")
        identity = identity if isinstance(identity, dict) else {}
        users = identity.get("userAssignedIdentities")
        system = "systemassigned" in str(identity.get("type") or "").replace(" ", "").lower()
        return {str(key).lower() for key in (users if isinstance(users, dict) else {})}, system

    (users_before, system_before), (users_after, system_after) = attached(before), attached(after)
    added = sorted(users_after - users_before)
    if system_after and not system_before:
        added.append("the system-assigned identity")
    return added


def _proposal_applicable(action: Action, ctx: Context, settings: Settings) -> tuple[bool, str]:
    if not settings.apply_definition_fixes:
        return False, "proposed only: REMEDIATION_APPLY_DEFINITION_FIXES is false"
    if action.params.get("complete") is False:
        return False, "proposed only: it still holds a placeholder to fill in"
    if action.params.get("secretsRedacted"):
        return False, "proposed only: secrets were redacted from it, so it cannot be deployed as is"
    added = _identities_added(ctx.definition.body if ctx.definition else {}, action.params["definition"])
    if added:
        # whoever may assign the identity decides; the app's own assign right must not stand in for theirs
        return False, (f"proposed only: it attaches {', '.join(added)} to the container group, and the app never "
                       "attaches an identity; someone who may assign it must deploy it")
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
