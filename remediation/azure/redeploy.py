"""Redeploy the recovered definition and verify the group runs.

While the pull still fails with ``InaccessibleImage`` only because a new role assignment or
network change has not propagated yet, retry with backoff inside a time budget (RBAC can take
up to ten minutes). Then require ``provisioningState == Succeeded`` and, in every container,
``Pulled`` and ``Started`` events newer than this deployment.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.mgmt.containerinstance.models import ContainerGroup

from ..model import CURRENT_ACI_API_VERSION, ErrorInfo, GroupDefinition, RedeployResult
from .clients import AzureClients

PROPAGATION_CODES = {"InaccessibleImage"}


@dataclass(frozen=True)
class RedeployOptions:
    budget_seconds: float = 600.0
    first_delay: float = 5.0
    max_delay: float = 60.0
    retry_on_propagation: bool = True
    sleep: Callable[[float], None] = time.sleep
    progress: Callable[[str], None] | None = None


def deployable_body(definition: GroupDefinition) -> dict[str, Any]:
    """The definition as a PUT body: read-only parts dropped, identities as ``{}``."""
    body = copy.deepcopy(definition.body)
    for key in ("id", "name", "type", "apiVersion", "etag", "systemData"):
        body.pop(key, None)
    props = body.get("properties") or {}
    for key in ("provisioningState", "instanceView"):
        props.pop(key, None)
    for container in props.get("containers") or []:
        (container.get("properties") or {}).pop("instanceView", None)
    identity = body.get("identity")
    if isinstance(identity, dict):
        identity.pop("principalId", None)
        identity.pop("tenantId", None)
        uai = identity.get("userAssignedIdentities")
        if isinstance(uai, dict):
            identity["userAssignedIdentities"] = {k: {} for k in uai}
    return body


def has_redacted_secrets(body: Any) -> bool:
    if isinstance(body, dict):
        return any(v == "[redacted]" or has_redacted_secrets(v) for v in body.values())
    if isinstance(body, list):
        return any(has_redacted_secrets(v) for v in body)
    return False


def _events_ok(group: ContainerGroup, since: datetime) -> tuple[bool, str]:
    for container in group.containers or []:
        view = container.instance_view
        names: set[str] = set()
        events: list[Any] = list(view.events) if view and view.events else []
        for event in events:
            stamp = event.last_timestamp or event.first_timestamp
            if stamp is not None and stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=UTC)
            if stamp is None or stamp >= since:
                names.add(event.name)
        if not {"Pulled", "Started"} <= names:
            return False, f"container {container.name} has no Pulled and Started events since the redeploy"
    return True, ""


def redeploy(clients: AzureClients, definition: GroupDefinition, options: RedeployOptions) -> RedeployResult:
    parts = definition.resource_id.strip("/").split("/")
    sub, rg, name = parts[1], parts[3], parts[-1]
    if has_redacted_secrets(definition.body):
        return RedeployResult("skipped", 0, "the definition holds secrets the engine does not keep; redeploy it "
                                             "yourself")
    client = clients.container_instance(sub)
    body = ContainerGroup.deserialize(deployable_body(definition))
    deadline = time.monotonic() + options.budget_seconds
    delay = options.first_delay
    attempts = 0
    while True:
        attempts += 1
        # a small margin for clock skew between this host and ARM; older events are a previous run's
        started = datetime.now(UTC) - timedelta(seconds=10)
        try:
            group = client.container_groups.begin_create_or_update(rg, name, body).result()
        except HttpResponseError as exc:
            code = exc.error.code if exc.error is not None else str(exc.status_code)
            message = str(exc.error.message) if exc.error is not None else str(exc)
            error = ErrorInfo(code or "", message, "redeploy")
            if (options.retry_on_propagation and code in PROPAGATION_CODES
                    and time.monotonic() + delay < deadline):
                if options.progress:
                    options.progress(f"attempt {attempts}: {code}; the fix may not have propagated yet, retrying "
                                     f"in {delay:.0f}s")
                options.sleep(delay)
                delay = min(delay * 2, options.max_delay)
                continue
            return RedeployResult("failed", attempts, f"{code}: {message}", error)
        except ServiceRequestError as exc:
            return RedeployResult("failed", attempts, f"the redeploy could not reach Azure: {exc}")
        state = str(group.provisioning_state or "")
        if state != "Succeeded":
            return RedeployResult("failed", attempts, f"provisioningState is {group.provisioning_state}")
        fresh = client.container_groups.get(rg, name)
        ok, why = _events_ok(fresh, started)
        if not ok:
            return RedeployResult("failed", attempts, why)
        return RedeployResult("succeeded", attempts, f"running (api-version {CURRENT_ACI_API_VERSION})")
