"""Redeploy the recovered definition and verify the group runs.

While the pull still fails with ``InaccessibleImage`` only because a new role assignment or
network change has not propagated yet, retry with backoff inside a time budget (RBAC can take
up to ten minutes). Then require ``provisioningState == Succeeded`` and, in every container,
``Pulled`` and ``Started`` events newer than this deployment, read again with backoff until they
appear (the troubleshooting guide, MicrosoftDocs/SupportArticles-docs
``support/azure/azure-container-instances/management/acr-image-pull-failures-managed-identity.md``,
ms.date 2026-09-09, "Verify the resolution": events can appear late; events of the earlier failed
deployment do not count, tell them apart by their timestamps).
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerinstance.models import ContainerGroup

from ..model import CURRENT_ACI_API_VERSION, ErrorInfo, GroupDefinition, RedeployResult
from ..resource_ids import parse_resource_id
from .clients import AzureClients
from .errors import CONNECTION_ERRORS, is_transient

PROPAGATION_CODES = {"InaccessibleImage"}


@dataclass(frozen=True)
class RedeployOptions:
    """How long and how often to redeploy and to look for the redeploy's events.

    Both follow :meth:`delay`: ``quick_retries`` waits of ``first_delay`` (a fix often takes effect
    within seconds, and the group should run soon after), then doubling up to ``max_delay``, each
    of those lengthened by a random share of up to ``jitter`` so that groups fixed together (a bad
    release) do not retry in step. The last retry is moved to the end of the budget where the next
    one would come after it. With the defaults, a fix that takes ten minutes to propagate costs at
    most 20 container-group PUTs in those ten minutes (the last at 600 s), not one every few seconds:
    each failed PUT is a write against ARM's throttling limits.
    """

    budget_seconds: float = 600.0
    first_delay: float = 1.0
    quick_retries: int = 5
    max_delay: float = 60.0
    jitter: float = 0.25
    retry_on_propagation: bool = True
    sleep: Callable[[float], None] = time.sleep
    progress: Callable[[str], None] | None = None
    rng: Callable[[], float] = random.random
    """A number in [0, 1) for the jitter (a test may fix it)."""

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0 for the first)."""
        if retry < self.quick_retries:
            return self.first_delay
        base = min(self.first_delay * 2.0 ** (retry - self.quick_retries + 1), self.max_delay)
        return base * (1.0 + self.jitter * self.rng())


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


FAILURE_EVENTS = {"Failed", "InaccessibleImage"}
"""Instance-view event names that mean a pull failed (ACI's ``Failed`` warning "Failed to pull image …")."""


def _stamp(event: Any) -> datetime | None:
    stamp = event.last_timestamp or event.first_timestamp
    if stamp is not None and stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return cast(datetime | None, stamp)


def _fresh(event: Any, since: datetime) -> bool:
    # an event without a timestamp cannot be told apart from the failed deployment's: it never counts
    stamp = _stamp(event)
    return stamp is not None and stamp > since


def _newest_event(group: ContainerGroup) -> datetime | None:
    """The newest instance-view event timestamp of ``group``'s containers (None without events)."""
    stamps: list[datetime] = []
    for container in group.containers or []:
        view = container.instance_view
        events: list[Any] = list(view.events or []) if view else []
        for event in events:
            stamp = _stamp(event)
            if stamp is not None:
                stamps.append(stamp)
    return max(stamps, default=None)


def _events_ok(group: ContainerGroup, since: datetime) -> tuple[bool | None, str]:
    """Whether every container pulled and started after ``since``, by the events' own timestamps.

    True: ``Pulled`` and ``Started`` newer than ``since`` in every container. False: a pull failure
    newer than ``since`` (the redeploy failed). None: not yet, the events may still come.
    """
    waiting: list[str] = []
    for container in group.containers or []:
        view = container.instance_view
        events: list[Any] = list(view.events) if view and view.events else []
        fresh = [event for event in events if _fresh(event, since)]
        failed = next((e for e in fresh if e.name in FAILURE_EVENTS), None)
        if failed is not None:
            return False, f"container {container.name}: {failed.name} after the redeploy: {failed.message}"
        if not {"Pulled", "Started"} <= {event.name for event in fresh}:
            waiting.append(str(container.name))
    if waiting:
        return None, f"container {', '.join(waiting)} has no Pulled and Started events since the redeploy"
    return True, ""


def redeploy(clients: AzureClients, definition: GroupDefinition, options: RedeployOptions) -> RedeployResult:
    """PUT the definition, retrying while a fix propagates, then wait for it to run.

    Verification follows the troubleshooting guide: ``provisioningState`` Succeeded, then in every
    container ``Pulled`` and ``Started`` events newer than the redeploy. Events can appear late, so
    the group is read again with backoff (``options.sleep``) until they do or the budget is spent;
    events of the earlier failed deployment never count, by their timestamps; a pull failure newer
    than the redeploy fails it (or retries it, while a fix may still be propagating).
    """
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
    budget = _Budget(options)
    read, current = _read(client, rg, name)
    # never older than the events the group already shows: those are the failed deployment's
    floor = _newest_event(current) if current is not None else None
    # what the group runs as this redeploy last saw it (None: no group); a retry that finds it
    # otherwise means someone else wrote or deleted the group meanwhile
    seen: _Runs | None = _runs(current) if current is not None else None
    attempts = 0
    while True:
        attempts += 1
        if attempts > 1:
            read_now, now = _read(client, rg, name)
            if read and read_now and (_runs(now) if now is not None else None) != seen:
                return RedeployResult("skipped", attempts - 1, "the group was written or deleted by someone else "
                                      "while the fix propagated: their write stands, the failed definition was "
                                      "not redeployed over it")
            read = read and read_now
        # retries are spaced from the start of one attempt to the next, so time an attempt takes
        # (a PUT, its polling, the event reads) counts towards the wait
        due = budget.elapsed() + options.delay(attempts - 1)
        # a small margin for clock skew between this host and ARM
        started = datetime.now(UTC) - timedelta(seconds=10)
        if floor is not None:
            started = max(started, floor)
        try:
            group = client.container_groups.begin_create_or_update(
                rg, name, cast(Any, body), content_type="application/json",
                api_version=CURRENT_ACI_API_VERSION).result()
        except HttpResponseError as exc:
            code = exc.error.code if exc.error is not None else str(exc.status_code)
            message = str(exc.error.message) if exc.error is not None else str(exc)
            error = ErrorInfo(code or "", message, "redeploy")
            if options.retry_on_propagation and code in PROPAGATION_CODES and budget.wait_until(
                    due, f"attempt {attempts}: {code}; the fix may not have propagated yet"):
                continue
            return RedeployResult("failed", attempts, f"{code}: {message}", error, retryable=is_transient(exc))
        except CONNECTION_ERRORS as exc:
            return RedeployResult("failed", attempts, f"the redeploy could not reach Azure: {exc}", retryable=True)
        seen = _runs(group)
        state = str(group.provisioning_state or "")
        if state != "Succeeded":
            return RedeployResult("failed", attempts, f"provisioningState is {group.provisioning_state}")
        ok, why = _await_events(client, rg, name, started, budget, options, group)
        if ok:
            return RedeployResult("succeeded", attempts, f"running (api-version {CURRENT_ACI_API_VERSION})")
        if ok is False and options.retry_on_propagation and budget.wait_until(
                due, f"attempt {attempts}: {why}; the fix may not have propagated yet"):
            continue
        return RedeployResult("failed", attempts, why)


class _Budget:
    """The redeploy's time budget on the clock ``options.sleep`` moves (a test's may be virtual):
    the time spent working plus the waits."""

    def __init__(self, options: RedeployOptions) -> None:
        self.options = options
        self.t0 = time.monotonic()
        self.slept = 0.0
        self.sleeping = 0.0
        """Real seconds spent inside ``options.sleep``."""
        self.ended = False
        """Whether :meth:`wait_until` has waited until the end of the budget."""

    def elapsed(self) -> float:
        return time.monotonic() - self.t0 - self.sleeping + self.slept

    def allows(self, seconds: float) -> bool:
        return self.elapsed() + seconds < self.options.budget_seconds

    def wait(self, seconds: float, why: str) -> None:
        if self.options.progress:
            self.options.progress(why)
        t = time.monotonic()
        self.options.sleep(seconds)
        self.sleeping += time.monotonic() - t
        self.slept += seconds

    def wait_until(self, due: float, why: str) -> bool:
        """Wait until ``due`` (seconds on :meth:`elapsed`) and say True. Where the budget ends first,
        wait until it ends and say True once, so the last attempt comes at its end rather than up to
        a whole backoff before it (a fix made before the budget started and taking the documented
        ten minutes is in effect by then); after that, or with the budget spent, False (nothing waited)."""
        pause = max(0.0, due - self.elapsed())
        if not self.allows(pause):
            pause = self.options.budget_seconds - self.elapsed()
            if self.ended or pause <= 0:
                return False
            self.ended = True
        self.wait(pause, f"{why}, retrying in {pause:.0f}s")
        return True


_Runs = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]
"""What a group runs, as far as a redeploy must not overwrite it: each container's name and image,
and the user-assigned identities attached."""


def _runs(group: ContainerGroup) -> _Runs:
    containers = tuple(sorted((str(c.name), str(c.image)) for c in group.containers or []))
    attached = group.identity.user_assigned_identities if group.identity else None
    return containers, tuple(sorted(str(i).lower() for i in attached or {}))


def _read(client: Any, rg: str, name: str) -> tuple[bool, ContainerGroup | None]:
    """``(read, group)``: the group as it is now, None where there is none (a rejected create leaves
    no group); ``read`` is False where ARM did not answer, and then only the clock margin decides."""
    try:
        return True, client.container_groups.get(rg, name, api_version=CURRENT_ACI_API_VERSION)
    except ResourceNotFoundError:
        return True, None
    except HttpResponseError:
        return False, None


def _await_events(client: Any, rg: str, name: str, since: datetime, budget: _Budget,
                  options: RedeployOptions, group: ContainerGroup) -> tuple[bool | None, str]:
    """Whether every container pulled and started after ``since``, or a pull failed: first in
    ``group``, what the PUT's long-running operation ended with (its final read of the group), then
    by reading the group again with backoff until they show or the budget runs out; the guide says
    events can appear late."""
    polls = 0
    while True:
        ok, why = _events_ok(group, since)
        if ok is not None:
            return ok, why
        poll = options.delay(polls)
        polls += 1
        if not budget.allows(poll):
            return None, f"{why} within the {options.budget_seconds:.0f}s budget"
        budget.wait(poll, f"{why} yet; looking again in {poll:.0f}s")
        group = client.container_groups.get(rg, name, api_version=CURRENT_ACI_API_VERSION)
