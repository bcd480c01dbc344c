"""Diagnosis critical path: gathering + diagnosis of missing-AcrPull under latency L per call.

The report's ``timings`` (context + findings) with the engine's own concurrency, beside the same
code reading one call at a time, in interleaved runs so drift in machine load hits both alike.
As the app runs: one instance keeps its clients across runs (``remediation.service.get_service``),
so the figure is a later run of an instance (a second failure, another group pulling from the same
registry), and the instance's first run (cold) is printed beside it: it also asks the registry for
its tokens (two calls in a row, after the Activity Log names the registry) and reads the built-in
roles' definitions, which the later run finds kept. Target: at most 3.5·L, i.e. three sequential
waves of reads.
"""

from __future__ import annotations

import statistics

from bench.figures import Figure
from bench.runs import Run, one_worker, run_scenario, scenario_data

NAME = "critical-path"
SCENARIO = "missing-acrpull"
TARGET_WAVES = 3.5


def _critical(run: Run) -> float:
    timings = run.main["timings"]
    return float(timings["context"] + timings["findings"])


def run(quick: bool = False) -> list[Figure]:
    latency = 0.02 if quick else 0.1
    repeat = 1 if quick else 3
    data = scenario_data(SCENARIO, latencySeconds=latency)
    cold: list[float] = []
    warm: list[float] = []
    serial: list[float] = []
    for _ in range(repeat):
        first = run_scenario(data, later=True)
        assert first.later is not None
        cold.append(_critical(first))
        warm.append(_critical(first.later))
        serial.append(_critical(run_scenario(data, tune=one_worker)))
    later, first_run, one = (statistics.median(x) for x in (warm, cold, serial))
    print(f"  {SCENARIO}, L = {latency * 1000:.0f} ms per call, median of {repeat}: gathering + diagnosis "
          f"{later:.2f} s ({later / latency:.1f} L) in a later run of an instance, {first_run:.2f} s "
          f"({first_run / latency:.1f} L) in its first (cold: registry tokens, role definitions), "
          f"{one:.2f} s ({one / latency:.1f} L) cold one call at a time")
    return [Figure("gathering + diagnosis, a later run", round(later / latency, 2), "<=", TARGET_WAVES, "L",
                   reason=f"first run of an instance {first_run / latency:.1f} L (registry tokens and role "
                          f"definitions not yet kept); one call at a time {one / latency:.1f} L")]
