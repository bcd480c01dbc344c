"""Memory: peak RSS of one remediation and of the storm, each in its own child process.

Both children run the same app (worker, service, Azurite ledger; ``bench.storm``): one failure
delivered once, and the storm (100 failures, ten deliveries each). Peak RSS is the child's own
``ru_maxrss``, so the parent's and Azurite's memory are not in it. Target: the storm ≤ 2× one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

from bench.figures import Figure
from bench.runs import ROOT
from bench.storm import DELIVERIES, storm

NAME = "memory"
MAX_RATIO = 2.0


def peak_mib(failures: int, deliveries: int) -> float:
    """Peak RSS of a child process running a storm of ``failures`` x ``deliveries``."""
    done = subprocess.run([sys.executable, "-m", "bench.memory", "--child", str(failures), str(deliveries)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peakMiB"])


def run(quick: bool = False) -> list[Figure]:
    failures, deliveries = (2, 1) if quick else (100, DELIVERIES)
    one = peak_mib(1, 1)
    many = peak_mib(failures, deliveries)
    print(f"  peak RSS: one remediation {one:.0f} MiB, storm of {failures * deliveries} events {many:.0f} MiB "
          f"({many / one:.2f}x)")
    return [Figure("storm peak RSS / one remediation's", round(many / one, 2), "<=", MAX_RATIO,
                   reason=f"{one:.0f} MiB and {many:.0f} MiB")]


def _child(failures: int, deliveries: int) -> None:
    storm(failures, deliveries)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"peakMiB": round(peak_kib / 1024, 1)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--child", nargs=2, type=int, metavar=("FAILURES", "DELIVERIES"), required=True,
                        help="run one storm here and print this process's peak RSS")
    args = parser.parse_args()
    _child(*args.child)
