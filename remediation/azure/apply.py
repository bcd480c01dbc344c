"""Apply the gate's allowed fixes: exactly the writes ``Gate.to_apply`` lists, each recorded with its outcome.

:data:`APPLIERS` holds one applier per kind (``remediation.actions``) that writes before the
redeploy; the redeploy is its own stage (``redeploy.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

from ..actions.assign_role import ASSIGN_ROLE
from ..actions.enable_trusted_services import ENABLE_TRUSTED_SERVICES
from ..model import Action
from ..policy import Gate
from ..resource_ids import parse_resource_id
from .clients import AzureClients
from .errors import CONNECTION_ERRORS, describe, is_transient

log = logging.getLogger(__name__)


def assign_role(clients: AzureClients, action: Action) -> Action:
    """Create the role assignment; an identical existing one counts as applied (idempotent)."""
    p = action.params
    client = clients.authorization(parse_resource_id(str(p["scope"])).subscription)
    params = RoleAssignmentCreateParameters(role_definition_id=p["roleDefinitionId"], principal_id=p["principalId"],
                                            principal_type=p.get("principalType", "ServicePrincipal"),
                                            condition=p.get("condition"), condition_version=p.get("conditionVersion"))
    try:
        client.role_assignments.create(p["scope"], p["name"], params)
        return replace(action, status="applied", detail=f"{action.detail} (created {p['name']})")
    except HttpResponseError as exc:
        code = exc.error.code if exc.error is not None else None
        if code == "RoleAssignmentExists":
            return replace(action, status="applied", detail=f"{action.detail} (already assigned)")
        # A brand-new identity may not have replicated to ARM yet; the principalType sent above is the
        # documented way round it, and where ARM still answers PrincipalNotFound a later attempt succeeds.
        return replace(action, status="failed", detail=f"{action.detail}: {describe(exc)}",
                       retryable=is_transient(exc) or code == "PrincipalNotFound")
    except CONNECTION_ERRORS as exc:
        return replace(action, status="failed", detail=f"{action.detail}: {describe(exc)}", retryable=True)


def enable_trusted_services(clients: AzureClients, action: Action) -> Action:
    """PATCH only ``networkRuleBypassOptions`` on the registry, nothing else."""
    sub, rg, _, name = parse_resource_id(action.target)
    body = {"properties": {"networkRuleBypassOptions": action.params["networkRuleBypassOptions"]}}
    try:
        clients.container_registry(sub).registries.begin_update(rg, name, body).result()
        return replace(action, status="applied")
    except (HttpResponseError, *CONNECTION_ERRORS) as exc:
        return replace(action, status="failed", detail=f"{action.detail}: {describe(exc)}",
                       retryable=is_transient(exc))


Applier = Callable[[AzureClients, Action], Action]

APPLIERS: dict[str, Applier] = {ASSIGN_ROLE.name: assign_role, ENABLE_TRUSTED_SERVICES.name: enable_trusted_services}
"""Kind name → the applier of every writing kind but the redeploy."""


def apply_actions(clients: AzureClients, decision: Gate) -> list[Action]:
    """The gate's actions, with each write it allowed performed in order and its outcome recorded.

    Only actions in ``decision.to_apply`` are written; the redeploy stays ``planned`` for its own
    stage, and everything else is returned as the gate decided it.
    """
    allowed = decision.to_apply
    done: list[Action] = []
    for action in decision.actions:
        applier = APPLIERS.get(action.kind)
        if applier is None or action not in allowed:
            done.append(action)
            continue
        result = applier(clients, action)
        log.info("remediation write", extra={"action": result.kind, "target": result.target,
                                             "status": result.status})
        done.append(result)
    return done
