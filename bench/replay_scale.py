"""Replay at scale: ``POST /api/replay`` of ``n`` dead-lettered events (one array, as a dead-letter
blob holds them), then the jobs it queued drained by eight workers.

Targets for 100 events: accepted in under 1 s, every event processed (each group redeployed),
ARM calls per event (reads and writes, pollers excluded) no higher than for a single event
replayed the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.figures import Figure
from bench.fleet import azurite, drain, fleet
from tests.azurite import AzuriteInstance

NAME = "replay-scale"
WORKERS = 8
MAX_ACCEPT_SECONDS = 1.0


@dataclass(frozen=True)
class ReplayResult:
    events: int
    status: int
    accept_seconds: float
    drain_seconds: float
    processed: int
    calls: int

    @property
    def calls_per_event(self) -> float:
        return self.calls / self.events


def replay(storage: AzuriteInstance, n: int) -> ReplayResult:
    with fleet(storage, n) as f:
        before = f.log_position()
        t0 = time.perf_counter()
        status, _ = f.world.http("replay", "POST", "/api/replay", body=f.world.events)
        t1 = time.perf_counter()
        drain(f.world, WORKERS)
        t2 = time.perf_counter()
        calls = f.calls_since(before)
        return ReplayResult(n, status, t1 - t0, t2 - t1, f.redeployed(), calls["read"] + calls["write"])


def run(quick: bool = False) -> list[Figure]:
    n = 3 if quick else 100
    with azurite() as storage:
        single = replay(storage, 1)
        many = replay(storage, n)
    print(f"  1 event: answered {single.status} in {single.accept_seconds:.2f} s, {single.calls} ARM calls")
    print(f"  {n} events: answered {many.status} in {many.accept_seconds:.2f} s, "
          f"drained in {many.drain_seconds:.1f} s, "
          f"{many.processed} groups redeployed, {many.calls} ARM calls ({many.calls_per_event:.1f} per event)")
    return [
        Figure(f"{n} events accepted", round(many.accept_seconds, 2), "<", MAX_ACCEPT_SECONDS, "s",
               reason=f"HTTP {many.status}"),
        Figure("events processed", many.processed, "==", n),
        Figure("ARM calls per event", round(many.calls_per_event, 1), "<=", single.calls_per_event,
               reason="target: a single event's"),
    ]
