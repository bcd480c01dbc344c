"""Event storm: each of ``n`` failures delivered ten times, shuffled, in both Event Grid schemas,
through the Event Grid function and then the queue function, ``workers`` invocations at a time,
the ledger on Azurite.

Targets for 1,000 events (100 failures): exactly 100 remediations (groups the remediator
redeployed), 0 duplicate writes (a second successful write by the remediator to the same resource),
at least 200 events/s from the first delivery to the drained queue. The CPU used meanwhile, by
this process (the app, the in-process sandbox, the host's side of the queue) and by Azurite, is
printed beside it: on a machine of ``n`` cores, a storm whose CPU exceeds ``n`` times its time at
the target cannot reach it however its work is spread.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.figures import Figure
from bench.fleet import azurite_process, cpu_seconds, drain, fleet

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
    process_cpu_seconds: float
    """CPU this process used from the first delivery to the drained queue: the app, the sandbox
    (ARM), and the host's side (queue output binding, listener), all sharing one GIL."""
    azurite_cpu_seconds: float
    """CPU Azurite (the ledger's tables and the jobs queue) used meanwhile, in its own process."""

    @property
    def events_per_second(self) -> float:
        return self.events / (self.deliver_seconds + self.drain_seconds)


def storm(failures: int, deliveries: int = DELIVERIES, workers: int = WORKERS, seed: int = 12) -> StormResult:
    """Run one storm in a fresh world and Azurite; every figure of it."""
    with azurite_process() as (storage, pid), fleet(storage, failures) as f:
        events = [(f.world.events if copy % 2 else f.cloud_events)[i]
                  for i in range(failures) for copy in range(deliveries)]
        random.Random(seed).shuffle(events)
        cpu0, azurite0, t0 = time.process_time(), cpu_seconds(pid), time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(f.world.deliver, events))
        t1 = time.perf_counter()
        invocations = drain(f.world, workers)
        t2, cpu2, azurite2 = time.perf_counter(), time.process_time(), cpu_seconds(pid)
        return StormResult(failures, len(events), t1 - t0, t2 - t1, len(invocations),
                           sum(not i.ok for i in invocations), f.redeployed(), f.duplicate_writes(),
                           cpu2 - cpu0, azurite2 - azurite0)


def run(quick: bool = False) -> list[Figure]:
    # quick: no duplicates, so no job waits out another run's claim (a tiny world, seconds)
    failures, deliveries = (2, 1) if quick else (100, DELIVERIES)
    result = storm(failures, deliveries)
    print(f"  {result.events} events ({failures} failures x {deliveries}, shuffled, both schemas), {WORKERS} workers: "
          f"delivered in {result.deliver_seconds:.1f} s, {result.jobs} queue invocations "
          f"({result.failed_invocations} failed) drained in {result.drain_seconds:.1f} s; CPU meanwhile: "
          f"{result.process_cpu_seconds:.1f} s this process (app, sandbox, host side), "
          f"{result.azurite_cpu_seconds:.1f} s Azurite")
    return [
        Figure("remediations", result.remediations, "==", failures),
        Figure("duplicate writes", result.duplicate_writes, "==", 0),
        Figure("events per second", round(result.events_per_second, 1), ">=", MIN_EVENTS_PER_SECOND, "events/s",
               reason=f"delivery {result.events / result.deliver_seconds:.0f}/s, then {result.jobs} jobs "
                      f"({result.jobs - result.events} of them re-enqueued to wait for another run of their "
                      f"failure or group) drained in {result.drain_seconds:.0f} s; CPU meanwhile "
                      f"{result.process_cpu_seconds:.0f} s here + {result.azurite_cpu_seconds:.0f} s Azurite, "
                      f"against {os.cpu_count() or 1} cores x {result.events / MIN_EVENTS_PER_SECOND:.0f} s "
                      f"at the target"),
    ]
