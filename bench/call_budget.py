"""ARM call budget: what the remediator calls for every bundled scenario, in a table.

Counted from the sandbox's request log while the engine runs: ARM reads and writes (``calls`` is
their sum), the SDKs' long-running-operation polls (excluded from ``calls``), registry data-plane
calls and registry token calls; missing-AcrPull also as a later run of an instance (``runs.run_scenario``
with ``later``), whose clients kept the built-in roles and registry tokens, printed beside the table.
Targets: missing-AcrPull ≤ 10 calls and ≤ 2 writes (its first run, as the table counts); the dry run
0 writes; no scenario above ``baseline_calls.json`` (measured on main before issue 12; rewrite it
with ``python -m bench.call_budget --write-baseline`` only when a rise is intended).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.figures import Figure
from bench.runs import ROOT, SCENARIOS, Run, run_scenario, scenario_data

NAME = "call-budget"
BASELINE = Path(__file__).with_name("baseline_calls.json")
COLUMNS = ("calls", "reads", "writes", "pollers", "registry", "tokens")
QUICK = ("missing-acrpull", "dry-run")
"""The scenarios of a quick run: the two the targets name."""


def counts(run: Run) -> dict[str, int]:
    row = {"reads": run.count("read"), "writes": run.count("write"), "pollers": run.count("poller"),
           "registry": run.count("registry"), "tokens": run.count("token")}
    return {"calls": row["reads"] + row["writes"], **row}


def _data_plane(row: dict[str, int]) -> int:
    return row["registry"] + row["tokens"]


def table(names: list[str]) -> dict[str, dict[str, int]]:
    return {name: counts(run_scenario(scenario_data(name))) for name in names}


def all_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.json"))


def baseline() -> dict[str, dict[str, int]]:
    rows: dict[str, dict[str, int]] = json.loads(BASELINE.read_text())["scenarios"]
    return rows


def run(quick: bool = False) -> list[Figure]:
    rows = table(list(QUICK) if quick else all_scenarios())
    before = baseline()
    print(f"  {'scenario':44} " + " ".join(f"{c:>8}" for c in COLUMNS) + "  baseline calls/registry+tokens")
    worse: list[str] = []
    for name, row in rows.items():
        base = before.get(name)
        mark = ""
        # ARM calls, and registry calls with their token calls together: a token asked for up front
        # instead of after a 401 moves one call from "registry" to "tokens" and is no worse
        if base is not None and (row["calls"] > base["calls"] or _data_plane(row) > _data_plane(base)):
            worse.append(name)
            mark = "  WORSE"
        was = f"{base['calls']}/{_data_plane(base)}" if base else "new"
        print(f"  {name:44} " + " ".join(f"{row[c]:>8}" for c in COLUMNS) + f"  {was:>8}{mark}")
    target = rows["missing-acrpull"]
    first = run_scenario(scenario_data("missing-acrpull"), later=True)
    assert first.later is not None
    later = counts(first.later)
    print(f"  {'missing-acrpull, a later run of an instance':44} " + " ".join(f"{later[c]:>8}" for c in COLUMNS)
          + "  (a second failure, another group and identity, same registry and clients)")
    return [
        Figure("missing-acrpull ARM calls (pollers excluded)", target["calls"], "<=", 10,
               reason=f"{target['reads']} reads, {target['writes']} writes; a later run of an instance "
                      f"{later['calls']} ({later['reads']} reads)"),
        Figure("missing-acrpull writes", target["writes"], "<=", 2),
        Figure("dry-run writes", rows["dry-run"]["writes"], "==", 0),
        Figure("scenarios above the baseline", len(worse), "==", 0, reason=", ".join(worse)),
    ]


def write_baseline() -> None:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    data: dict[str, Any] = {"measuredAt": commit, "columns": list(COLUMNS), "scenarios": table(all_scenarios())}
    BASELINE.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {BASELINE} at {commit}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.call_budget")
    parser.add_argument("--write-baseline", action="store_true", help="measure every scenario now and keep it")
    if parser.parse_args().write_baseline:
        write_baseline()
        sys.exit(0)
    parser.print_help()
