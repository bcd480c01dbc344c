"""Event Grid for ARM events: build ``Microsoft.Resources.Resource*`` events, deliver them.

Delivery is at least once, as in Azure: faults with a ``deliver`` key duplicate, delay or
reorder events, e.g. ``{"match": "* *", "deliver": "duplicate", "times": 1}``. The match's path
part is tested against the event subject. ``seconds`` is how long a ``delay`` waits (default
0.5) and how long a ``reorder`` holds an event for a successor (default 2) before sending it anyway.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .world import World, iso, resource_group_of, subscription_of

CLAIM_OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
CLAIM_TID = "http://schemas.microsoft.com/identity/claims/tenantid"


@dataclass
class Subscriber:
    target: Callable[[Any], None] | str
    schema: str = "EventGridSchema"  # or "CloudEventSchemaV1_0"
    included_event_types: list[str] | None = None
    subject_begins_with: str | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def wants(self, event: dict[str, Any]) -> bool:
        wanted_types = [t.lower() for t in self.included_event_types or []]
        if wanted_types and event["eventType"].lower() not in wanted_types:
            return False
        prefix = (self.subject_begins_with or "").lower()
        return bool(str(event["subject"]).lower().startswith(prefix))


def event_claims(claims: dict[str, Any]) -> dict[str, Any]:
    """The caller's token claims as ARM copies them into events (object id under its long name)."""
    out = {k: str(v) for k, v in claims.items() if k not in ("oid", "tid")}
    if "oid" in claims:
        out[CLAIM_OID] = str(claims["oid"])
    if "tid" in claims:
        out[CLAIM_TID] = str(claims["tid"])
    return out


def build_event(world: World, *, event_type: str, resource_id: str, operation_name: str, status: str,
                correlation_id: str, claims: dict[str, Any], http_request: dict[str, Any] | None = None,
                topic_scope: str = "subscription") -> dict[str, Any]:
    """A Resource* event in Event Grid schema, with the documented ``data`` fields.

    ``topic`` (CloudEvents ``source``) is the system topic's scope: ``/subscriptions/{id}`` for the
    subscription system topic the app subscribes to (``infra/modules/target-events.bicep``, topic
    type ``Microsoft.Resources.Subscriptions``; Azure/azure-rest-api-specs, ``specification/eventgrid/
    data-plane/Microsoft.Resources`` examples with ``subscription_topic``), or the resource group
    for a ``resourceGroup`` topic (``Microsoft.Resources.ResourceGroups``).
    """
    sub = subscription_of(resource_id)
    rg = resource_group_of(resource_id)
    topic = f"/subscriptions/{sub}/resourceGroups/{rg}" if topic_scope == "resourceGroup" and rg \
        else f"/subscriptions/{sub}"
    provider = operation_name.split("/", 1)[0]
    data: dict[str, Any] = {
        "authorization": {"scope": resource_id, "action": operation_name,
                          "evidence": {"role": "Contributor", "principalId": claims.get("oid", ""),
                                       "principalType": "ServicePrincipal"}},
        "claims": event_claims(claims),
        "correlationId": correlation_id,
        "resourceProvider": provider,
        "resourceUri": resource_id,
        "operationName": operation_name,
        "status": status,
        "subscriptionId": sub,
        "tenantId": world.tenant_id,
    }
    if http_request:
        data["httpRequest"] = http_request
    return {
        "subject": resource_id,
        "eventType": event_type,
        "eventTime": iso(world.now()),
        "id": str(uuid.uuid4()),
        "data": data,
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": topic,
    }


def to_cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    """The same event in CloudEvents 1.0 form (source = topic, type = eventType)."""
    return {
        "source": event["topic"],
        "subject": event["subject"],
        "type": event["eventType"],
        "time": event["eventTime"],
        "id": event["id"],
        "data": event["data"],
        "specversion": "1.0",
    }


class Dispatcher:
    """One background thread per world that delivers queued events in order."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.queue: queue.Queue[tuple[Subscriber, dict[str, Any]] | None] = queue.Queue()
        self.pending = 0
        self.cond = threading.Condition()
        self._held: list[tuple[Subscriber, dict[str, Any]]] = []
        self._hold_seconds = 2.0
        self.thread = threading.Thread(target=self._run, name="sandbox-eventgrid", daemon=True)
        self.thread.start()

    def submit(self, sub: Subscriber, event: dict[str, Any]) -> None:
        with self.cond:
            self.pending += 1
        self.queue.put((sub, event))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued delivery has been attempted."""
        deadline = time.time() + timeout
        with self.cond:
            while self.pending:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def _done(self, n: int = 1) -> None:
        with self.cond:
            self.pending -= n
            self.cond.notify_all()

    def _run(self) -> None:
        while True:
            try:
                # an event held back by a "reorder" fault waits for the next one, but not forever
                item = self.queue.get(timeout=self._hold_seconds) if self._held else self.queue.get()
            except queue.Empty:
                self._release_held()
                continue
            if item is None:
                return
            sub, event = item
            fault = _delivery_fault(self.world, event)
            kind = fault.get("deliver") if fault else None
            if kind == "reorder":
                self._held.append(item)  # delivered right after the next event
                self._hold_seconds = float(fault.get("seconds", 2.0)) if fault else 2.0
                continue
            if kind == "delay" and fault:
                time.sleep(float(fault.get("seconds", 0.5)))
            copies = 2 if kind == "duplicate" else 1
            for _ in range(copies):
                _deliver(sub, event)
            self._done()
            self._release_held()

    def _release_held(self) -> None:
        while self._held:
            held_sub, held_event = self._held.pop(0)
            _deliver(held_sub, held_event)
            self._done()


def _delivery_fault(world: World, event: dict[str, Any]) -> dict[str, Any] | None:
    """The first delivery fault (``deliver`` key) whose subject pattern matches, counting its use."""
    for i, fault in enumerate(world.behaviour.get("faults") or []):
        if not fault.get("deliver"):
            continue
        pattern = fault.get("match", "* *").partition(" ")[2].strip() or "*"
        if not fnmatch.fnmatch(event["subject"].lower(), pattern.lower()):
            continue
        if world.use_fault(i, fault):
            return dict(fault)
    return None


def _deliver(sub: Subscriber, event: dict[str, Any]) -> None:
    payload: Any = to_cloud_event(event) if sub.schema.lower().startswith("cloud") else event
    payload = copy.deepcopy(payload)
    sub.received.append(payload)
    if callable(sub.target):
        try:
            sub.target(payload)
        except Exception as exc:  # a failing handler is a failed delivery, recorded like Event Grid does
            sub.failures.append(repr(exc))
        return
    body = json.dumps(payload if sub.schema.lower().startswith("cloud") else [payload]).encode()
    ctype = "application/cloudevents+json; charset=utf-8" if sub.schema.lower().startswith("cloud") \
        else "application/json"
    for attempt in range(3):
        req = urllib.request.Request(sub.target, data=body, method="POST",
                                     headers={"Content-Type": ctype, "aeg-event-type": "Notification",
                                              "aeg-delivery-count": str(attempt)})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                if 200 <= resp.status <= 204:
                    return
        except (urllib.error.URLError, OSError) as exc:
            sub.failures.append(f"attempt {attempt}: {exc}")
        time.sleep(0.1 * (attempt + 1))


_dispatchers: dict[int, Dispatcher] = {}
_dispatch_lock = threading.Lock()


def stop_dispatcher(world: World) -> None:
    """End the world's delivery thread (called when its sandbox stops)."""
    with _dispatch_lock:
        d = _dispatchers.pop(id(world), None)
    if d is not None and d.world is world:
        d.queue.put(None)
        d.thread.join(timeout=5)


def dispatcher(world: World) -> Dispatcher:
    with _dispatch_lock:
        d = _dispatchers.get(id(world))
        if d is None or d.world is not world:
            d = Dispatcher(world)
            _dispatchers[id(world)] = d
        return d


def publish(world: World, event: dict[str, Any]) -> None:
    """Queue ``event`` (Event Grid schema) for every subscriber whose filter it passes."""
    with world.lock:
        world.delivered.append(event)
        subs = list(world.subscribers)
    for sub in subs:
        if sub.wants(event):
            dispatcher(world).submit(sub, event)


def emit_write(world: World, *, resource_id: str, operation_name: str, succeeded: bool, correlation_id: str,
               claims: dict[str, Any], existed: bool, method: str, client_request_id: str | None,
               delete: bool = False, api_version: str | None = None) -> dict[str, Any]:
    """Publish the ResourceWrite*/ResourceDelete* event ARM raises for a write."""
    kind = "Delete" if delete else "Write"
    event_type = f"Microsoft.Resources.Resource{kind}{'Success' if succeeded else 'Failure'}"
    http_request = None
    if existed or delete:  # ARM includes httpRequest only for updates and deletes
        http_request = {"clientRequestId": client_request_id or str(uuid.uuid4()), "clientIpAddress": "127.0.0.1",
                        "method": method, "url": f"https://management.azure.com{resource_id}"
                        + (f"?api-version={api_version}" if api_version else "")}
    event = build_event(world, event_type=event_type, resource_id=resource_id, operation_name=operation_name,
                        status="Succeeded" if succeeded else "Failed", correlation_id=correlation_id,
                        claims=claims, http_request=http_request)
    publish(world, event)
    return event
