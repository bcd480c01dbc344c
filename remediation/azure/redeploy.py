"""Redeploy the recovered definition and verify the group runs.

While the pull still fails with ``InaccessibleImage`` only because a new role assignment or
network change has not propagated yet, retry with backoff inside a time budget (RBAC can take
up to ten minutes). Then require ``provisioningState == Succeeded`` and, in every container,
``Pulled`` and ``Started`` events newer than this deployment.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance.models import ContainerGroup

from ..model import CURRENT_ACI_API_VERSION, ErrorInfo, GroupDefinition, RedeployResult
from ..resource_ids import parse_resource_id
from .clients import AzureClients
from .errors import CONNECTION_ERRORS, is_transient

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


def missing_secrets(body: Any) -> list[str]:
    """Where the definition lacks a secret: redacted by the engine, or never recorded by Azure.

    Azure does not log secure values, so a body from the Activity Log may have an environment
    variable with neither ``value`` nor ``secureValue``, or a ``username`` with no ``password``.
    Redeploying such a body would silently change the group, so it is not redeployed.
    """
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if value == "[redacted]":
                    found.append(f"{path}.{key}")
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(body, "$")
    props = body.get("properties") or {} if isinstance(body, dict) else {}
    for kind in ("containers", "initContainers"):
        for i, container in enumerate(props.get(kind) or []):
            for j, env in enumerate((container.get("properties") or {}).get("environmentVariables") or []):
                if isinstance(env, dict) and "value" not in env and "secureValue" not in env:
                    found.append(f"properties.{kind}[{i}].properties.environmentVariables[{j}] ({env.get('name')})")
    for i, cred in enumerate(props.get("imageRegistryCredentials") or []):
        if isinstance(cred, dict) and cred.get("username") and not cred.get("password"):
            found.append(f"properties.imageRegistryCredentials[{i}].password")
    return found


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
    sub, rg, _, name = parse_resource_id(definition.resource_id)
    if not definition.complete:
        return RedeployResult("skipped", 0, "only part of the definition is known (from the error message)")
    lost = missing_secrets(definition.body)
    if lost:
        return RedeployResult("skipped", 0, f"the recovered definition lacks secrets ({', '.join(lost[:3])}); "
                                            "redeploy it yourself")
    client = clients.container_instance(sub)
    # the JSON itself: the SDK's model would silently drop fields it does not know
    body = json.dumps(deployable_body(definition)).encode()
    deadline = time.monotonic() + options.budget_seconds
    delay = options.first_delay
    attempts = 0
    while True:
        attempts += 1
        # a small margin for clock skew between this host and ARM; older events are a previous run's
        started = datetime.now(UTC) - timedelta(seconds=10)
        try:
            group = client.container_groups.begin_create_or_update(
                rg, name, cast(Any, body), content_type="application/json",
                api_version=CURRENT_ACI_API_VERSION).result()
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
            return RedeployResult("failed", attempts, f"{code}: {message}", error, retryable=is_transient(exc))
        except CONNECTION_ERRORS as exc:
            return RedeployResult("failed", attempts, f"the redeploy could not reach Azure: {exc}", retryable=True)
        state = str(group.provisioning_state or "")
        if state != "Succeeded":
            return RedeployResult("failed", attempts, f"provisioningState is {group.provisioning_state}")
        fresh = client.container_groups.get(rg, name, api_version=CURRENT_ACI_API_VERSION)
        ok, why = _events_ok(fresh, started)
        if not ok:
            return RedeployResult("failed", attempts, why)
        return RedeployResult("succeeded", attempts, f"running (api-version {CURRENT_ACI_API_VERSION})")
