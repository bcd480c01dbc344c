"""Diagnosis critical path: gathering + diagnosis of missing-AcrPull under latency L per call.

The report's ``timings`` (context + findings) with the engine's own concurrency, beside the same
code reading one call at a time, in interleaved runs so drift in machine load hits both alike.
Target: at most 3.5·L, i.e. three sequential waves of reads.
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
    concurrent: list[float] = []
    sequential: list[float] = []
    for _ in range(repeat):
        concurrent.append(_critical(run_scenario(data)))
        sequential.append(_critical(run_scenario(data, tune=one_worker)))
    best, serial = statistics.median(concurrent), statistics.median(sequential)
    print(f"  {SCENARIO}, L = {latency * 1000:.0f} ms per call, median of {repeat}: gathering + diagnosis "
          f"{best:.2f} s ({best / latency:.1f} L) concurrently, {serial:.2f} s ({serial / latency:.1f} L) "
          f"one call at a time (ratio {best / serial:.2f})")
    return [Figure("gathering + diagnosis", round(best / latency, 2), "<=", TARGET_WAVES, "L",
                   reason=f"one call at a time: {serial / latency:.1f} L")]
