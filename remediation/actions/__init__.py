"""Every kind of action the app may ever plan, each declared once, in its own module.

A kind module declares one :class:`FixKind` with :func:`declare` (``enable_trusted_services.py``
is the shortest); everything else about the kind is derived from :data:`KINDS`: the plan's
order, which kinds write, which ones a redeploy must follow, the invariant the gate checks, the
command a report offers a person. A new kind's module would end with::

    RESTART = declare(FixKind(
        name="restart", order=50, target="container-group",
        writes=True, needs_redeploy=False, waits_for_propagation=False,
        invariant=_invariant, command=_command,
    ))

Adding a module here adds a kind. Nothing here calls Azure or decides a write: the planners
(``remediation.plan``) propose actions of these kinds, the gate (``remediation.policy``) decides
each one, and ``remediation.azure.apply.APPLIERS`` holds the one applier of every kind that writes
before the redeploy (the redeploy has its own stage, ``remediation.azure.redeploy``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from remediation.errors import InputError
from remediation.model import Action, Context, Registry
from remediation.resource_ids import parse_resource_id

Invariant = Callable[[Action, Context], str | None]
Command = Callable[[Action], str | None]


@dataclass(frozen=True)
class FixKind:
    """One kind of action: what it may touch and how the pipeline treats it."""

    name: str
    """The action's ``kind`` in plans and reports."""
    order: int
    """Where actions of this kind come in a plan, lowest first; unique."""
    target: Literal["registry", "container-group"]
    """What an action of this kind changes or concerns (a registry, or the failed group itself)."""
    writes: bool
    """Applying it writes to Azure. A proposal does not: a person, or the redeploy, deploys it."""
    needs_redeploy: bool
    """The failed group picks the change up only when redeployed, so the plan adds a redeploy after it."""
    waits_for_propagation: bool
    """Once it is applied, the redeploy retries while Azure is still propagating it (RBAC, network rules)."""
    invariant: Invariant
    """Why an action of this kind is not one the app may ever perform, or None; independent of settings."""
    command: Command
    """The Azure CLI command a person can run for an action not applied, or None when the action is
    not of a shape the app itself would perform (a refused, tampered action is never advice)."""


KINDS: dict[str, FixKind] = {}
"""Kind name → its declaration, lowest ``order`` first."""


def declare(kind: FixKind) -> FixKind:
    """Register ``kind``; a second kind with the same name or order is a programming error."""
    clash = next((k for k in KINDS.values() if k.name == kind.name or k.order == kind.order), None)
    if clash is not None:
        raise ValueError(f"fix kind {kind.name} (order {kind.order}) clashes with {clash.name} (order {clash.order})")
    ordered = sorted([*KINDS.values(), kind], key=lambda k: k.order)
    KINDS.clear()
    KINDS.update((k.name, k) for k in ordered)
    return kind


# --- what the kinds' invariants share -------------------------------------------------------------------


def is_registry_id(resource_id: str) -> bool:
    """Exactly a registry, not a child (a wider or narrower scope is never a target)."""
    try:
        parsed = parse_resource_id(resource_id)
    except InputError:
        return False
    return bool(parsed.resource_group) and parsed.provider_type.lower() == "microsoft.containerregistry/registries"


def find_registry(ctx: Context, registry_id: str) -> Registry | None:
    """The registry in the context with this id (case-insensitive), if it was read."""
    wanted = registry_id.lower()
    return next((r for r in ctx.registries.values() if r is not None and r.id.lower() == wanted), None)


def _discover() -> None:
    """Import every kind module in this package; importing one declares its kind."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_discover()
