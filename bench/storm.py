"""Event storm: each of ``n`` failures delivered ten times, shuffled, in both Event Grid schemas,
through the Event Grid function and then the queue function, ``workers`` invocations at a time,
the ledger on Azurite.

Targets for 1,000 events (100 failures): exactly 100 remediations (groups the remediator
redeployed), 0 duplicate writes (a second successful write by the remediator to the same resource),
at least 200 events/s from the first delivery to the drained queue.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.figures import Figure
from bench.fleet import azurite, drain, fleet

NAME = "storm"
DELIVERIES = 10
WORKERS = 8
MIN_EVENTS_PER_SECOND = 200.0


@dataclass(frozen=True)
class StormResult:
    failures: int
    events: int
    deliver_seconds: float
    drain_seconds: float
    jobs: int
    failed_invocations: int
    remediations: int
    duplicate_writes: int

    @property
    def events_per_second(self) -> float:
        return self.events / (self.deliver_seconds + self.drain_seconds)


def storm(failures: int, deliveries: int = DELIVERIES, workers: int = WORKERS, seed: int = 12) -> StormResult:
    """Run one storm in a fresh world and Azurite; every figure of it."""
    with azurite() as storage, fleet(storage, failures) as f:
        events = [(f.world.events if copy % 2 else f.cloud_events)[i]
                  for i in range(failures) for copy in range(deliveries)]
        random.Random(seed).shuffle(events)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(f.world.deliver, events))
        t1 = time.perf_counter()
        invocations = drain(f.world, workers)
        t2 = time.perf_counter()
        return StormResult(failures, len(events), t1 - t0, t2 - t1, len(invocations),
                           sum(not i.ok for i in invocations), f.redeployed(), f.duplicate_writes())


def run(quick: bool = False) -> list[Figure]:
    # quick: no duplicates, so no job waits out another run's claim (a tiny world, seconds)
    failures, deliveries = (2, 1) if quick else (100, DELIVERIES)
    result = storm(failures, deliveries)
    print(f"  {result.events} events ({failures} failures x {deliveries}, shuffled, both schemas), {WORKERS} workers: "
          f"delivered in {result.deliver_seconds:.1f} s, {result.jobs} queue invocations "
          f"({result.failed_invocations} failed) drained in {result.drain_seconds:.1f} s")
    return [
        Figure("remediations", result.remediations, "==", failures),
        Figure("duplicate writes", result.duplicate_writes, "==", 0),
        Figure("events per second", round(result.events_per_second, 1), ">=", MIN_EVENTS_PER_SECOND, "events/s",
               reason=f"delivery {result.events / result.deliver_seconds:.0f}/s, then {result.jobs} jobs "
                      f"({result.jobs - result.events} of them re-enqueued to wait for another run of their "
                      f"group) drained in {result.drain_seconds:.0f} s"),
    ]
