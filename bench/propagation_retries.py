"""Retries under propagation: a fix that takes 10 minutes to reach ACI.

The assignment takes 600 s to take effect (sandbox clock); the redeploy runs with the app's
options and budget, its sleeps moving the sandbox clock. Counted: container-group PUTs.
Targets: at most 20 in those 10 minutes (backoff, within budget), and the run ends ``remediated``
within the app's default budget (600 s, started after the fix was made).
"""

from __future__ import annotations

from bench.figures import Figure
from bench.propagation import group_puts, run_with_delay

NAME = "propagation-retries"
MAX_PUTS = 20


def run(quick: bool = False) -> list[Figure]:
    delay = 60.0 if quick else 600.0
    result = run_with_delay(delay)
    report = result.main
    puts = group_puts(result)
    print(f"  D = {delay:.0f} s: {puts} container-group PUT(s) over {result.sandbox_seconds:.0f} s on the sandbox "
          f"clock; outcome {report['outcome']}, redeploy {report['redeploy']['status']} "
          f"({report['redeploy']['attempts']} attempt(s))")
    return [Figure("container-group PUTs while the fix propagates", puts, "<=", MAX_PUTS,
                   reason=f"D = {delay:.0f} s, outcome {report['outcome']}"),
            Figure("runs remediated within the app's redeploy budget", int(report["outcome"] == "remediated"),
                   "==", 1, reason=f"outcome {report['outcome']}")]
