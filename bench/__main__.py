"""``make bench``: every benchmark of issue 12 against its target; exit 1 when one is missed.

``python -m bench`` runs them all, ``python -m bench storm cold-start`` the ones named,
``--quick`` at tiny sizes (the smoke test's). Each prints its details, then one summary line per
figure: PASS or MISS, the figure, the target.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.figures import Figure

MODULES = ("critical_path", "call_budget", "time_to_healthy", "storm", "propagation_retries",
           "replay_scale", "cold_start", "memory")

Benchmark = Callable[[bool], list[Figure]]


def benchmarks() -> dict[str, Benchmark]:
    """Name (``critical-path``) to its ``run(quick)``, in the order of the issue's table."""
    found: dict[str, Benchmark] = {}
    for module_name in MODULES:
        module = importlib.import_module(f"bench.{module_name}")
        found[module.NAME] = module.run
    return found


def _cpu_model() -> str:
    """The CPU model as /proc/cpuinfo names it (Linux), else what ``platform`` knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.machine())


def main(argv: Sequence[str] | None = None, *, registry: dict[str, Benchmark] | None = None) -> int:
    known = registry if registry is not None else benchmarks()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="BENCHMARK", help=f"any of: {', '.join(known)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test; figures mean nothing")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(known)}")
    print(f"machine: {os.cpu_count()} CPU(s), {_cpu_model()}; Python {platform.python_version()}")
    summary: list[str] = []
    missed = 0
    for name in args.names or list(known):
        print(f"{name}:", flush=True)
        t0 = time.perf_counter()
        try:
            figures = known[name](args.quick)
        except Exception as exc:  # one broken benchmark is a miss; the others still run
            traceback.print_exc()
            summary.append(f"MISS {name}: did not finish: {type(exc).__name__}: {exc}")
            missed += 1
            continue
        finally:
            print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
        for figure in figures:
            summary.append(figure.line(name))
            missed += not figure.met
    print("summary:")
    for line in summary:
        print(f"  {line}")
    print(f"{missed} target(s) missed" if missed else "every target met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
