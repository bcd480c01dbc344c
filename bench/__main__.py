"""``make bench``: figures for the engine in the sandbox, printed, never asserted.

Machines here are noisy, so each figure is compared within one run: the same scenario with
concurrent context reads against one-at-a-time reads, under the same injected ARM latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path
from typing import Any

from remediation.demo import demo_settings, engine_for, user_write
from remediation.signal import parse_event
from sandbox import Sandbox, parse_scenario
from sandbox.eventgrid import dispatcher

ROOT = Path(__file__).resolve().parent.parent


def _one_run(scenario_data: dict[str, Any], workers: int) -> dict[str, float]:
    scenario = parse_scenario(scenario_data, "bench")
    with Sandbox(scenario) as sb:
        events: list[dict[str, Any]] = []
        sb.subscribe(events.append, included_event_types=["Microsoft.Resources.ResourceWriteFailure"])
        user_write(sb, scenario)
        dispatcher(sb.world).wait_idle()
        event = next(e for e in events if "/containergroups/" in e["subject"].lower())
        engine = engine_for(sb, scenario, demo_settings(sb, scenario))
        engine.gather_options = replace(engine.gather_options, max_workers=workers)
        before = len(sb.world.request_log)
        tracemalloc.start()
        t0 = time.perf_counter()
        report = engine.run(parse_event(event), trigger="eventgrid")
        took = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        engine.clients.close()
        calls = [r for r in sb.world.request_log[before:] if (r.caller or "") == sb.world.remediator]
        assert report["outcome"] == scenario.expect["outcome"], report["outcome"]  # type: ignore[index]
        return {"seconds": took, "context": report["timings"]["context"], "calls": len(calls),
                "peak_mib": peak / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "two-causes-acrpull-and-network.json"))
    parser.add_argument("--latency", type=float, default=0.05, help="injected seconds per ARM call")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = json.loads(Path(args.scenario).read_text())
    data.setdefault("behaviour", {})["latencySeconds"] = args.latency
    print(f"scenario {data['name']}, {args.latency * 1000:.0f} ms injected per ARM call, {args.repeat} runs each")
    results: dict[int, list[dict[str, float]]] = {1: [], 8: []}
    for _ in range(args.repeat):
        for workers in (8, 1):  # interleaved, so drift in machine load hits both alike
            results[workers].append(_one_run(data, workers))
    med = {w: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for w, runs in results.items()}
    for workers in (8, 1):
        m = med[workers]
        print(f"  context reads with {workers} worker(s): run {m['seconds']:.2f} s (context {m['context']:.2f} s), "
              f"{m['calls']:.0f} ARM/registry calls, peak traced memory {m['peak_mib']:.1f} MiB")
    print(f"  concurrent/sequential context time ratio: {med[8]['context'] / med[1]['context']:.2f}")
    print(f"  concurrent/sequential whole-run ratio:     {med[8]['seconds'] / med[1]['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
