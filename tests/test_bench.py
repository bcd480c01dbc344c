"""Smoke tests of ``make bench`` (bench/): every benchmark runs at tiny sizes, a missed target
makes the exit code 1, and the call budget's rules (baseline, dry run) count as misses.

No timing is asserted here: the figures themselves are ``make bench``'s business.
"""

from __future__ import annotations

import ast
import math

import pytest

from bench import call_budget, cold_start
from bench.__main__ import MODULES, benchmarks, main
from bench.figures import Figure
from bench.runs import kind_of
from sandbox.world import RequestRecord


def test_every_module_of_the_table_is_a_benchmark() -> None:
    assert list(benchmarks()) == ["critical-path", "call-budget", "time-to-healthy", "storm",
                                  "propagation-retries", "replay-scale", "cold-start", "memory"]
    assert len(MODULES) == 8


@pytest.mark.parametrize("name", ["critical-path", "call-budget", "time-to-healthy", "storm",
                                  "propagation-retries", "replay-scale", "cold-start", "memory"])
def test_each_benchmark_runs_at_tiny_sizes(name: str) -> None:
    figures = benchmarks()[name](True)
    assert figures and all(isinstance(f, Figure) for f in figures)
    assert all(math.isfinite(f.value) or f.value == math.inf for f in figures)
    assert all(f.line(name).startswith(("PASS ", "MISS ")) for f in figures)


def test_a_missed_target_exits_1_and_says_miss(capsys: pytest.CaptureFixture[str]) -> None:
    registry = {"fine": lambda _quick: [Figure("calls", 3, "<=", 10)],
                "slow": lambda _quick: [Figure("seconds", 9.5, "<=", 7, "s")]}
    assert main([], registry=registry) == 1
    out = capsys.readouterr().out
    assert "PASS fine: calls = 3, target <= 10" in out
    assert "MISS slow: seconds = 9.50 s, target <= 7 s" in out
    assert "1 target(s) missed" in out


def test_every_target_met_exits_0_and_one_benchmark_can_run_alone(capsys: pytest.CaptureFixture[str]) -> None:
    registry = {"fine": lambda _quick: [Figure("rate", 250, ">=", 200)],
                "slow": lambda _quick: [Figure("seconds", 9.5, "<=", 7)]}
    assert main(["fine"], registry=registry) == 0
    assert "MISS" not in capsys.readouterr().out


def test_an_unknown_benchmark_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["nope"], registry={"fine": lambda _quick: []})
    assert exc.value.code == 2


@pytest.mark.parametrize(("compare", "value", "met"), [("<=", 10, True), ("<=", 11, False), ("<", 1, False),
                                                       ("==", 0, True), ("==", 1, False), (">=", 199, False)])
def test_a_figure_meets_its_target_by_its_comparison(compare: str, value: float, met: bool) -> None:
    target = {"<=": 10, "<": 1, "==": 0, ">=": 200}[compare]
    assert Figure("x", value, compare, target).met is met


def _row(calls: int, writes: int = 0, tokens: int = 2, registry: int = 2) -> dict[str, int]:
    return {"calls": calls, "reads": calls - writes, "writes": writes, "pollers": 0, "registry": registry,
            "tokens": tokens}


def _budget(monkeypatch: pytest.MonkeyPatch, rows: dict[str, dict[str, int]],
            base: dict[str, dict[str, int]]) -> dict[str, Figure]:
    monkeypatch.setattr(call_budget, "table", lambda _names: rows)
    monkeypatch.setattr(call_budget, "baseline", lambda: base)
    return {f.name: f for f in call_budget.run(quick=True)}


def test_a_scenario_above_its_baseline_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"missing-acrpull": _row(18, 2), "dry-run": _row(13), "healthy": _row(5)}
    same = _budget(monkeypatch, {"missing-acrpull": _row(9, 2), "dry-run": _row(13), "healthy": _row(5)}, base)
    assert same["scenarios above the baseline"].met
    more_calls = _budget(monkeypatch, {"missing-acrpull": _row(9, 2), "dry-run": _row(13), "healthy": _row(6)}, base)
    assert not more_calls["scenarios above the baseline"].met
    assert more_calls["scenarios above the baseline"].reason == "healthy"
    more_tokens = _budget(monkeypatch, {"missing-acrpull": _row(9, 2), "dry-run": _row(13, tokens=3),
                                        "healthy": _row(5)}, base)
    assert not more_tokens["scenarios above the baseline"].met
    # a token asked for up front instead of a registry call answered 401 is no worse
    moved = _budget(monkeypatch, {"missing-acrpull": _row(9, 2), "dry-run": _row(13, tokens=3, registry=1),
                                  "healthy": _row(5)}, base)
    assert moved["scenarios above the baseline"].met


def test_the_call_budget_targets_missing_acrpull_and_the_dry_run(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"missing-acrpull": _row(18, 2), "dry-run": _row(13)}
    figures = _budget(monkeypatch, {"missing-acrpull": _row(11, 3), "dry-run": _row(13, 1)}, base)
    assert not figures["missing-acrpull ARM calls (pollers excluded)"].met
    assert not figures["missing-acrpull writes"].met
    assert not figures["dry-run writes"].met


def test_the_baseline_names_the_commit_it_was_measured_at() -> None:
    import json

    data = json.loads(call_budget.BASELINE.read_text())
    assert len(data["measuredAt"]) == 40
    assert {"missing-acrpull", "dry-run"} <= set(data["scenarios"])


def _record(method: str, path: str) -> RequestRecord:
    return RequestRecord(method, path, "", 200, "x", 0.0, 0.0)


def test_calls_are_counted_by_kind() -> None:
    sub = "/subscriptions/s/resourceGroups/rg/providers"
    assert kind_of(_record("POST", "/registries/myacr.azurecr.io/oauth2/token")) == "token"
    assert kind_of(_record("GET", "/registries/myacr.azurecr.io/acr/v1/repo/_tags/v1")) == "registry"
    poll = "/subscriptions/s/providers/Microsoft.Sandbox/locations/eastus/operationStatuses/1"
    assert kind_of(_record("GET", poll)) == "poller"
    assert kind_of(_record("PUT", f"{sub}/Microsoft.ContainerInstance/containerGroups/g")) == "write"
    assert kind_of(_record("GET", f"{sub}/Microsoft.ContainerInstance/containerGroups/g")) == "read"


def test_the_eager_variant_imports_every_sdk_after_the_apps_own_imports() -> None:
    source = "from __future__ import annotations\n\nimport json\n\napp = 1\n"
    variant = cold_start.eager_variant(source)
    tree = ast.parse(variant)
    imported = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert {"json", "remediation.service", *cold_start.sdk_modules()} <= imported
    assert "azure.mgmt.containerinstance" in cold_start.sdk_modules()
    assert variant.index("import remediation.service") < variant.index("app = 1")


def test_a_benchmark_that_fails_is_a_miss_and_the_others_still_run(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(_quick: bool) -> list[Figure]:
        raise TimeoutError("the jobs queue did not drain within 600 s")

    registry = {"broken": broken, "fine": lambda _quick: [Figure("calls", 3, "<=", 10)]}
    assert main([], registry=registry) == 1
    out = capsys.readouterr().out
    assert "MISS broken: did not finish: TimeoutError: the jobs queue did not drain within 600 s" in out
    assert "PASS fine" in out
