"""A bad release fails many groups at once and Event Grid delivers each failure several times, in both
schemas, to concurrent workers: each failure is remediated exactly once, nothing is written twice, and
a delivery of a failure already finished costs no Azure call. Its dead letters replayed at once are
queued without a round trip after another."""

from __future__ import annotations

import copy
import dataclasses
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from remediation.demo import user_write
from sandbox.eventgrid import dispatcher, to_cloud_event
from tests.app import World
from tests.host import queue_delivery

FAILURES = 4
DELIVERIES = 5
WORKERS = 8


def _fail_groups(world: World) -> list[dict[str, Any]]:
    """The scenario's failing write made for ``FAILURES`` groups; their ResourceWriteFailure events."""
    for i in range(FAILURES):
        write = copy.deepcopy(world.scenario.failed_write)
        write["resourceId"] = f"{write['resourceId']}-{i}"
        assert user_write(world.sb, dataclasses.replace(world.scenario, failed_write=write)) is not None
    dispatcher(world.sb.world).wait_idle()
    events = [e for e in world.events if "/containergroups/" in e["subject"].lower()]
    assert len(events) == FAILURES
    return events


def _deliver_and_run(world: World, events: list[dict[str, Any]]) -> None:
    """Each event delivered ``DELIVERIES`` times, shuffled, half as CloudEvents; the queued jobs run
    on ``WORKERS`` threads at once."""
    deliveries = [to_cloud_event(e) if n % 2 else e for e in events for n in range(DELIVERIES)]
    random.Random(12).shuffle(deliveries)
    for delivery in deliveries:
        world.deliver(delivery)
    messages = []
    while batch := list(world.queue.receive_messages(max_messages=32, visibility_timeout=300)):
        messages.extend(batch)
    assert len(messages) == len(deliveries)

    def run(message: Any) -> bool:
        data, metadata = queue_delivery(message.content, dequeue_count=message.dequeue_count)
        return world.host.invoke("run_remediation_job", {"msg": data}, trigger_metadata=metadata).ok

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        assert all(pool.map(run, messages))


def _remediator_calls(world: World) -> int:
    return sum(1 for r in world.sb.world.request_log if r.caller == world.sb.world.remediator)


def test_a_storm_of_duplicate_deliveries_remediates_each_failure_once_and_writes_nothing_twice(world: World) -> None:
    events = _fail_groups(world)
    _deliver_and_run(world, events)
    for event in events:
        assert [r["outcome"] for r in world.service.ledger.reports_for(event["subject"])] == ["remediated"]
    writes = world.remediator_writes()
    redeploys = Counter(r.path.lower() for r in writes if "/containergroups/" in r.path.lower())
    assert sorted(redeploys.values()) == [1] * FAILURES  # one redeploy per group
    assignments = {r.path.lower() for r in writes if "/roleassignments/" in r.path.lower()}
    assert len(assignments) == 1  # the groups share one identity: one AcrPull assignment for all

    before = _remediator_calls(world)
    _deliver_and_run(world, events)  # every failure finished: all of them duplicates now
    assert _remediator_calls(world) == before
    for event in events:
        assert [r["outcome"] for r in world.service.ledger.reports_for(event["subject"])] == ["remediated"]


class _SlowQueue:
    """A jobs queue whose every send takes a round trip's time; it tells how many were under way at once."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.under_way = 0
        self.most = 0
        self._lock = threading.Lock()

    def send(self, text: str) -> None:
        with self._lock:
            self.under_way += 1
            self.most = max(self.most, self.under_way)
        time.sleep(0.02)
        with self._lock:
            self.under_way -= 1
            self.sent.append(text)


def test_a_replay_of_a_hundred_dead_letters_queues_them_concurrently(world: World) -> None:
    event = world.fail()
    queue = _SlowQueue()
    world.service.jobs = queue  # type: ignore[assignment]
    dead_letters = [{**event, "id": str(uuid.uuid4())} for _ in range(100)]
    status, body = world.http("replay", "POST", "replay", body=dead_letters)
    assert status == 202 and body["events"] == 100
    assert len(queue.sent) == 100 and queue.most > 1
