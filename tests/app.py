"""The function app as Azure runs it, for the tests: the genuine Python worker (``tests.host``)
indexes ``function_app.py`` once per test process and invokes its functions with what the host
puts on the wire; the app runs against a sandbox (ARM) and a real Azurite (ledger and queues).

``world`` is the fixture most tests want: a sandbox for a scenario (``@pytest.mark.scenario``),
the app's service wired to it, and the jobs queue on Azurite, drained the way the host's queue
listener does (:meth:`World.drain`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from remediation.demo import demo_settings, engine_for, user_write
from remediation.ledger import Ledger
from remediation.service import Service, set_service
from remediation.storage import HostStorage, JobQueue
from sandbox import Sandbox, parse_scenario
from sandbox.eventgrid import dispatcher
from tests.host import Host, Invocation, event_grid_delivery, queue_delivery

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "scenarios" / "missing-acrpull.json"

_host: Host | None = None


def the_host() -> Host:
    """The worker process of this test process: the app can be indexed once per process."""
    global _host
    if _host is None:
        _host = Host(ROOT)
        assert _host.init_ok, _host.init_error
    return _host


class World:
    def __init__(self, sb: Sandbox, scenario: Any, service: Service, queue: Any, poison: Any) -> None:
        self.sb, self.scenario, self.service = sb, scenario, service
        self.queue, self.poison = queue, poison
        self.host = the_host()
        self.events: list[dict[str, Any]] = []
        sb.subscribe(self.events.append, included_event_types=["Microsoft.Resources.ResourceWriteFailure"])

    def fail(self) -> dict[str, Any]:
        """The user's failing write; returns the container group's ResourceWriteFailure event."""
        assert user_write(self.sb, self.scenario) is not None
        dispatcher(self.sb.world).wait_idle()
        return next(e for e in self.events if "/containergroups/" in e["subject"].lower())

    def remediator_writes(self) -> list[Any]:
        return self.sb.world.writes(self.sb.world.remediator)

    def deliver(self, event: dict[str, Any]) -> Invocation:
        """Event Grid delivers ``event``; what the function wrote to its output binding is queued
        as the host's queue output binding does (base64 on the jobs queue)."""
        result = self.host.invoke("on_resource_write_failure", {"event": event_grid_delivery(event)})
        assert result.ok, result.error
        message = result.output("jobs")
        if message is not None:
            self.queue.send_message(message)
        return result

    def drain(self, *, max_dequeue: int | None = None, limit: int = 1000, wait: float = 30.0) -> list[Invocation]:
        """The host's queue listener: each visible message is invoked; a failed one becomes
        visible again, and after ``maxDequeueCount`` failures it moves to the poison queue.

        A message sent with a visibility delay (a job re-enqueued to wait for another run) is
        waited for, as the listener would, up to ``wait`` seconds at a time."""
        max_dequeue = max_dequeue or self.service.max_dequeue
        done: list[Invocation] = []
        deadline: float | None = None
        for _ in range(limit):
            batch = list(self.queue.receive_messages(messages_per_page=32, visibility_timeout=60, max_messages=32))
            if not batch:
                if not self.queue.get_queue_properties().approximate_message_count:
                    return done
                deadline = deadline or time.monotonic() + wait
                if time.monotonic() > deadline:
                    raise AssertionError(f"a delayed message stayed invisible for more than {wait} s")
                time.sleep(0.2)
                continue
            deadline = None
            for message in batch:
                data, metadata = queue_delivery(message.content, dequeue_count=message.dequeue_count,
                                                message_id=message.id)
                try:
                    result = self.host.invoke("run_remediation_job", {"msg": data}, trigger_metadata=metadata)
                except BaseException:
                    # the worker process died mid-run: its message comes back once its visibility
                    # timeout passes (at once here), and the next drain sees it again
                    self.queue.update_message(message, visibility_timeout=0)
                    raise
                done.append(result)
                if result.ok:
                    self.queue.delete_message(message)
                elif message.dequeue_count >= max_dequeue:
                    self.poison.send_message(message.content)
                    self.queue.delete_message(message)
                else:
                    self.queue.update_message(message, visibility_timeout=0)
        raise AssertionError("the queue did not drain")

    def drain_poison(self) -> list[Invocation]:
        done = []
        for message in list(self.poison.receive_messages(max_messages=32, visibility_timeout=60)):
            data, metadata = queue_delivery(message.content, dequeue_count=message.dequeue_count,
                                            message_id=message.id)
            done.append(self.host.invoke("on_poisoned_job", {"msg": data}, trigger_metadata=metadata))
            self.poison.delete_message(message)
        return done

    def http(self, function: str, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None,
             route_params: dict[str, str] | None = None) -> tuple[int, Any]:
        from tests.host import http_request

        raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
        result = self.host.invoke(function, {"req": http_request(method, path, body=raw, query=query,
                                                                 route_params=route_params)})
        assert result.ok, result.error
        return result.http


@contextmanager
def open_world(azurite: Any, data: dict[str, Any], overrides: dict[str, str] | None = None) -> Iterator[World]:
    """A sandbox for the scenario ``data``, the app's service wired to it and to ``azurite``
    (ledger, jobs queue), with ``overrides`` of its settings; what the ``world`` fixture yields
    (the benchmarks use it too)."""
    scenario = parse_scenario(data, "test")
    name = f"jobs-{uuid.uuid4().hex[:12]}"
    storage = HostStorage.from_env({"AzureWebJobsStorage": azurite.connection_string})
    with Sandbox(scenario) as sb:
        settings = demo_settings(sb, scenario).with_overrides({
            "REMEDIATION_REDEPLOY_BUDGET_SECONDS": "30", "REMEDIATION_ACTIVITY_LOG_WAIT_SECONDS": "10",
            "REMEDIATION_JOBS_QUEUE": name, **(overrides or {})})
        engine = engine_for(sb, scenario, settings, virtual_clock=True)
        ledger = Ledger.from_connection_string(azurite.connection_string, table_name=f"t{uuid.uuid4().hex[:12]}",
                                               claim_ttl=timedelta(seconds=settings.claim_ttl_seconds))
        queue = storage.queue_client(name, sb.credential())
        poison = storage.queue_client(f"{name}-poison", sb.credential())
        queue.create_queue()
        poison.create_queue()
        service = Service.assemble(settings, engine.clients, ledger, gather_options=engine.gather_options,
                                   redeploy_options=engine.redeploy_options, jobs=JobQueue(queue))
        set_service(service)
        try:
            yield World(sb, scenario, service, queue, poison)
        finally:
            set_service(None)
            engine.clients.close()
            ledger.close()
            for q in (queue, poison):
                q.delete_queue()
                q.close()


@pytest.fixture
def world(azurite: Any, request: pytest.FixtureRequest) -> Iterator[World]:
    marker = request.node.get_closest_marker("scenario")
    data = json.loads((ROOT / marker.args[0] if marker else DEFAULT).read_text())
    overrides: dict[str, str] = dict(marker.kwargs.get("settings", {})) if marker else {}
    with open_world(azurite, data, overrides) as opened:
        yield opened
