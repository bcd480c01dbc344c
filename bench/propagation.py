"""The propagation scenario run with the redeploy options the deployed app uses (``Service``:
the redeploy budget from settings, the library's backoff), its waits on the sandbox's clock."""

from __future__ import annotations

from typing import Any

from bench.runs import Run, run_scenario, scenario_data
from remediation.azure.redeploy import RedeployOptions
from remediation.engine import Engine

SCENARIO = "propagation-delay"


def as_deployed(engine: Engine, world: Any) -> None:
    """The app's redeploy options (``Service.assemble``), waiting by moving the sandbox clock."""
    engine.redeploy_options = RedeployOptions(budget_seconds=float(engine.settings.redeploy_budget_seconds),
                                              sleep=world.advance)


def run_with_delay(seconds: float) -> Run:
    """missing AcrPull whose assignment takes ``seconds`` to take effect, remediated end to end."""
    return run_scenario(scenario_data(SCENARIO, rbacPropagationSeconds=seconds), tune=as_deployed)


def group_puts(run: Run) -> int:
    """Container-group PUTs the remediator made (the first redeploy and every retry)."""
    group = run.main["resourceId"].lower()
    return sum(1 for c in run.calls if c.method == "PUT" and c.path.lower() == group and c.status != 401)
