"""Many failed container groups at once, and the function app that heals them.

A fleet scenario is missing-AcrPull ``n`` times over: ``n`` user-assigned identities, none with a
role on the registry, and ``n`` groups pulling with them. :func:`fleet` makes every failing write
and yields the app's world as the tests run it (``tests.app.open_world``: the genuine Python
worker, the service, the ledger and the jobs queue on Azurite), with every failure's event in both
Event Grid schemas. :func:`drain` is the host's queue listener with ``workers`` concurrent
invocations.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
import types
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.runs import kind_of, scenario_data
from remediation.demo import user_write
from sandbox.eventgrid import dispatcher
from tests.app import World, open_world
from tests.azurite import Azurite, AzuriteInstance
from tests.host import Invocation, queue_delivery

WRITE_FAILURE = "Microsoft.Resources.ResourceWriteFailure"
VISIBILITY_SECONDS = 300


@contextmanager
def azurite() -> Iterator[AzuriteInstance]:
    """One Azurite (in memory) for the benchmark, stopped afterwards."""
    with azurite_process() as (instance, _pid):
        yield instance


@contextmanager
def azurite_process() -> Iterator[tuple[AzuriteInstance, int]]:
    """:func:`azurite`, with the process id of its server (for :func:`cpu_seconds`)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-azurite-"))
    server = Azurite(workdir)
    try:
        instance = server.start()
        assert server.process is not None
        yield instance, server.process.pid
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` and its waited-for children have used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def fleet_data(n: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The fleet scenario and its ``n`` failing writes (one group and one identity each)."""
    data = scenario_data("missing-acrpull")
    template = data.pop("failedWrite")
    identity = next(r for r in data["resources"] if r["type"].endswith("/userAssignedIdentities"))
    data["resources"].remove(identity)
    writes: list[dict[str, Any]] = []
    for i in range(n):
        uai = copy.deepcopy(identity)
        uai["name"] = f"fleetId{i:03d}"
        uai["id"] = identity["id"].rsplit("/", 1)[0] + f"/{uai['name']}"
        uai["properties"]["principalId"] = f"aaaaaaaa-0000-0000-0000-{i + 1:012x}"
        uai["properties"]["clientId"] = f"aaaaaaaa-0000-0000-0001-{i + 1:012x}"
        data["resources"].append(uai)
        write = copy.deepcopy(template)
        write["resourceId"] = template["resourceId"].rsplit("/", 1)[0] + f"/fleet-{i:03d}"
        write["body"]["identity"]["userAssignedIdentities"] = {uai["id"]: {}}
        for credential in write["body"]["properties"]["imageRegistryCredentials"]:
            credential["identity"] = uai["id"]
        writes.append(write)
    data["failedWrite"] = writes[0]
    data["name"] = f"fleet-of-{n}"
    data.pop("expect", None)
    return data, writes


@dataclass
class Fleet:
    world: World
    group_ids: list[str]
    cloud_events: list[dict[str, Any]]
    """The same failures' events in CloudEvents 1.0 (``world.events`` holds the Event Grid schema)."""

    def calls_since(self, since: int = 0) -> Counter[str]:
        """The calls the sandbox answered after request-log position ``since`` (the app's, once the
        failing writes are made), by kind (``bench.runs.kind_of``)."""
        with self.world.sb.world.lock:
            log = list(self.world.sb.world.request_log[since:])
        return Counter(kind_of(r) for r in log)

    def log_position(self) -> int:
        with self.world.sb.world.lock:
            return len(self.world.sb.world.request_log)

    def redeployed(self) -> int:
        """Groups of the fleet the remediator wrote (PUT) at least once."""
        groups = {g.lower() for g in self.group_ids}
        return len({r.path.lower() for r in self.world.remediator_writes()
                    if r.method == "PUT" and r.path.lower() in groups})

    def duplicate_writes(self) -> int:
        """Successful writes by the remediator beyond the first to the same resource and method."""
        seen = Counter((r.method, r.path.lower()) for r in self.world.remediator_writes())
        return sum(count - 1 for count in seen.values())


@contextmanager
def fleet(storage: AzuriteInstance, n: int, *, writers: int = 8) -> Iterator[Fleet]:
    """``n`` groups failing to pull, each once, the app's world around them."""
    data, writes = fleet_data(n)
    with open_world(storage, data) as world:
        cloud: list[dict[str, Any]] = []
        world.sb.subscribe(cloud.append, schema="CloudEventSchemaV1_0", included_event_types=[WRITE_FAILURE])
        scenario = world.scenario
        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(lambda w: user_write(world.sb, types.SimpleNamespace(failed_write=w)), writes))
        dispatcher(world.sb.world).wait_idle()
        ids = [w["resourceId"] for w in writes]
        world.events[:] = [e for e in world.events if "/containergroups/" in e["subject"].lower()]
        cloud[:] = [e for e in cloud if "/containergroups/" in str(e.get("subject", "")).lower()]
        assert len(world.events) == len(cloud) == n, (len(world.events), len(cloud), scenario.name)
        yield Fleet(world, ids, cloud)


def drain(world: World, workers: int, *, timeout: float = 600.0) -> list[Invocation]:
    """The host's queue listener, ``workers`` invocations at a time, until the jobs queue is empty:
    a failed message becomes visible again, and after ``maxDequeueCount`` failures it is poisoned."""
    deadline = time.monotonic() + timeout
    done: list[Invocation] = []
    in_flight: dict[Future[Invocation], Any] = {}

    def invoke(message: Any) -> Invocation:
        data, metadata = queue_delivery(message.content, dequeue_count=message.dequeue_count, message_id=message.id)
        return world.host.invoke("run_remediation_job", {"msg": data}, trigger_metadata=metadata)

    with ThreadPoolExecutor(workers) as pool:
        while time.monotonic() < deadline:
            room = workers - len(in_flight)
            if room:
                for message in world.queue.receive_messages(max_messages=room, visibility_timeout=VISIBILITY_SECONDS):
                    in_flight[pool.submit(invoke, message)] = message
            if not in_flight:
                if not world.queue.get_queue_properties().approximate_message_count:
                    return done
                time.sleep(0.1)  # a message queued with a delay (waiting for another run of its group)
                continue
            finished, _ = wait(list(in_flight), timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                message = in_flight.pop(future)
                result = future.result()
                done.append(result)
                if result.ok:
                    world.queue.delete_message(message)
                elif message.dequeue_count >= world.service.max_dequeue:
                    world.poison.send_message(message.content)
                    world.queue.delete_message(message)
                else:
                    world.queue.update_message(message, visibility_timeout=0)
    raise TimeoutError(f"the jobs queue did not drain within {timeout:.0f} s")
