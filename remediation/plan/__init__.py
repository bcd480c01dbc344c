"""Plan: from findings to the actions that would fix them. Pure; nothing here calls Azure.

One fix per module in this package, each a plain function registered for a cause code::

    @fix("ACR_PULL_PERMISSION_MISSING", "Assign AcrPull to the identity at the registry's scope only.")
    def assign_acr_pull(finding: Finding, ctx: Context) -> list[Action]: ...

Adding a module here adds a fix; :func:`plan` finds it. The planners propose; the policy gate
(``remediation.policy``) decides what may be applied.

Rules :func:`plan` adds around the planners:

- A fix registered with ``automatic=True`` (the default) is planned only for a finding marked
  ``fixable``; a proposal-only fix (``automatic=False``) is planned for every matching finding.
- ``propose-definition`` actions are cumulative: each planner sees the definition as corrected by
  the proposals before it, and one proposal per group remains, listing every change.
- Whenever something is to change and a definition exists, one ``redeploy`` of the group follows
  the fixes (unless a fix already planned one).
- Actions are deduplicated and ordered the same way whatever the order of the findings, by
  their kind's ``order`` (``remediation.actions``): role assignments, registry changes,
  proposals, redeploy.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from remediation.actions import KINDS
from remediation.actions.propose_definition import PROPOSE_DEFINITION
from remediation.actions.redeploy import REDEPLOY
from remediation.model import CURRENT_ACI_API_VERSION, MIN_IDENTITY_API_VERSION, Action, Context, Finding

Planner = Callable[[Finding, Context], list[Action]]


@dataclass(frozen=True)
class Fix:
    cause: str
    doc: str
    planner: Planner
    automatic: bool = True
    awaits_propagation: bool = False
    """The cause is a grant that exists but may not have taken effect yet: the redeploy retries
    while it propagates, as after a fix whose kind ``waits_for_propagation``."""


FIXES: dict[str, Fix] = {}
"""Cause code → its registered fix."""


def fix(cause: str, doc: str, *, automatic: bool = True,
        awaits_propagation: bool = False) -> Callable[[Planner], Planner]:
    """Register ``planner`` as the fix for ``cause``; decorators may be stacked for several causes."""

    def register(planner: Planner) -> Planner:
        if cause in FIXES and FIXES[cause].planner is not planner:
            raise ValueError(f"two fixes registered for {cause}")
        FIXES[cause] = Fix(cause, doc, planner, automatic, awaits_propagation)
        return planner

    return register


def plan(findings: Sequence[Finding], ctx: Context) -> list[Action]:
    """The actions that would fix ``findings``, deduplicated and in a fixed order."""
    planned: list[Action] = []
    working = ctx
    for finding in sorted(findings, key=_finding_key):
        registered = FIXES.get(finding.code)
        if registered is None or (registered.automatic and not finding.fixable):
            continue
        for action in registered.planner(finding, working):
            if action.kind == PROPOSE_DEFINITION.name:
                action = _merge_proposal(planned, action)
                working = _with_proposed_body(working, action)
            if _key(action) not in {_key(a) for a in planned}:
                planned.append(action)

    changes = any(a.kind in KINDS and KINDS[a.kind].needs_redeploy for a in planned)
    if changes and ctx.definition is not None and not any(a.kind == REDEPLOY.name for a in planned):
        planned.append(redeploy_action(ctx))
    return sorted(planned, key=_order)


def redeploy_action(ctx: Context, *, api_version: str | None = None, cause: str = "") -> Action:
    """Redeploy the group from its definition; an api-version too old for identity credentials is raised."""
    version = api_version or (ctx.definition.api_version if ctx.definition else None)
    if not version or version[:10] < MIN_IDENTITY_API_VERSION:
        version = CURRENT_ACI_API_VERSION
    target = ctx.definition.resource_id if ctx.definition else ctx.signal.resource_id
    return Action(
        kind=REDEPLOY.name,
        target=target,
        detail=f"redeploy the container group with api-version {version}",
        params={"apiVersion": version},
        cause=cause,
    )


def _merge_proposal(planned: list[Action], action: Action) -> Action:
    """Fold an earlier proposal for the same group into ``action`` (whose body already includes it)."""
    earlier = next((a for a in planned if a.kind == PROPOSE_DEFINITION.name and _same(a.target, action.target)), None)
    if earlier is None:
        return action
    planned.remove(earlier)
    params = dict(action.params)
    params["changes"] = [*earlier.params.get("changes", []), *action.params.get("changes", [])]
    params["complete"] = bool(earlier.params.get("complete", True)) and bool(action.params.get("complete", True))
    causes = [c for c in (*earlier.cause.split(","), *action.cause.split(",")) if c]
    return replace(
        action,
        detail=f"{earlier.detail} {action.detail}",
        params=params,
        cause=",".join(dict.fromkeys(causes)),
    )


def _with_proposed_body(ctx: Context, action: Action) -> Context:
    body = action.params.get("definition")
    if ctx.definition is None or not isinstance(body, dict):
        return ctx
    return replace(ctx, definition=replace(ctx.definition, body=body))


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _finding_key(finding: Finding) -> tuple[str, str, str]:
    return (finding.code, finding.summary, json.dumps(finding.evidence, sort_keys=True, default=str))


def _key(action: Action) -> tuple[str, str, str]:
    return (action.kind, action.target.lower(), json.dumps(action.params, sort_keys=True, default=str))


def _order(action: Action) -> tuple[int, str, str]:
    kind = KINDS.get(action.kind)
    rank = kind.order if kind else sys.maxsize  # an unknown kind last; the gate refuses it
    return (rank, action.target.lower(), json.dumps(action.params, sort_keys=True, default=str))


def _discover() -> None:
    """Import every fix module in this package; importing one registers its fixes."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_discover()
