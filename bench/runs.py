"""One scenario run in the sandbox, as the demo makes it, with the calls the remediator made.

Shared by the benchmarks that time or count a single remediation; the storm and replay
benchmarks run the function app instead (``bench.fleet``).
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from remediation.demo import demo_settings, engine_for, later_writes, user_write
from remediation.engine import Engine
from remediation.signal import parse_event
from sandbox import Sandbox, parse_scenario
from sandbox.eventgrid import dispatcher
from sandbox.world import RequestRecord

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
WRITE_METHODS = ("PUT", "PATCH", "POST", "DELETE")


def scenario_data(name: str, **behaviour: Any) -> dict[str, Any]:
    """A bundled scenario's JSON, with ``behaviour`` knobs (``latencySeconds``, ...) set."""
    data: dict[str, Any] = json.loads((SCENARIOS / f"{name}.json").read_text())
    data.setdefault("behaviour", {}).update(behaviour)
    return data


def kind_of(record: RequestRecord) -> str:
    """``token`` (registry token exchange), ``registry`` (other registry data-plane calls),
    ``poller`` (an SDK's long-running-operation status poll), ``write`` or ``read`` (ARM)."""
    path = record.path.lower()
    if path.startswith("/registries/"):
        return "token" if "/oauth2/" in path else "registry"
    if "/operationstatuses/" in path or "/operationresults/" in path:
        return "poller"
    return "write" if record.method in WRITE_METHODS else "read"


@dataclass
class Run:
    """What one scenario run did: the reports, the calls made while the engine ran, the world."""

    reports: list[dict[str, Any]]
    calls: list[RequestRecord]
    world: Any
    seconds: float
    """Wall time of the engine's runs."""
    sandbox_seconds: float
    """Time on the sandbox's clock (wall time plus every wait the engine made it skip)."""
    later: Run | None = field(default=None)
    """With ``later=True``: the run of a second failure by the same engine afterwards (see :func:`run_scenario`)."""

    def count(self, kind: str) -> int:
        return sum(1 for c in self.calls if kind_of(c) == kind)

    @property
    def main(self) -> dict[str, Any]:
        """The report about the failed write (a deployment's own event is skipped, not the story)."""
        for report in self.reports:
            resource = str(report.get("resourceId", "")).lower()
            if "/containergroups/" in resource or "/privateendpoints/" in resource:
                return report
        return self.reports[0]


def run_scenario(data: dict[str, Any], *, virtual_clock: bool = True,
                 tune: Callable[[Engine, Any], None] | None = None, later: bool = False) -> Run:
    """Make the scenario's failing write, then run the engine on every event it raised.

    ``tune(engine, world)`` may change the engine's options before it runs (e.g. one worker).
    ``later``: then another group fails the same way, pulling from the same registry with an
    identity of its own (:func:`_second_failure`), and the same engine, so the same clients, runs
    on it, as one instance of the app does for a second failure (``Run.later``)."""
    data = _with_twin_identities(data) if later else data
    scenario = parse_scenario(data, "bench")
    with Sandbox(scenario) as sb:
        events: list[dict[str, Any]] = []
        sb.subscribe(events.append, included_event_types=["Microsoft.Resources.ResourceWriteFailure"])
        user_write(sb, scenario)
        later_writes(sb, scenario)
        dispatcher(sb.world).wait_idle()
        engine = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=virtual_clock)
        if tune is not None:
            tune(engine, sb.world)
        first = _run_events(sb, engine, events)
        if later:
            events.clear()
            user_write(sb, replace(scenario, failed_write=_second_failure(scenario.failed_write or {})))
            dispatcher(sb.world).wait_idle()
            first.later = _run_events(sb, engine, events)
        engine.clients.close()
        return first


def _run_events(sb: Sandbox, engine: Engine, events: list[dict[str, Any]]) -> Run:
    before = len(sb.world.request_log)
    t0, s0 = time.perf_counter(), sb.world.now()
    reports = [engine.run(parse_event(event), trigger="eventgrid") for event in events]
    seconds, sandbox_seconds = time.perf_counter() - t0, sb.world.now() - s0
    with sb.world.lock:
        calls = list(sb.world.request_log[before:])
    return Run(reports, calls, sb.world, seconds, sandbox_seconds)


_TWIN = "2"
"""What the second failure's group and identities are named with: their first's name and this."""


def _twin_principal(principal: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:bench:twin:{principal}"))


def _with_twin_identities(data: dict[str, Any]) -> dict[str, Any]:
    """The scenario with a twin of each user-assigned identity (same group, another principal, no role)."""
    data = copy.deepcopy(data)
    twins = []
    for resource in data.get("resources") or []:
        if str(resource.get("type", "")).lower() == "microsoft.managedidentity/userassignedidentities":
            twin = copy.deepcopy(resource)
            twin["id"], twin["name"] = resource["id"] + _TWIN, resource["name"] + _TWIN
            props = twin.setdefault("properties", {})
            props["principalId"] = _twin_principal(str(props.get("principalId", "")))
            props["clientId"] = _twin_principal(str(props.get("clientId", "")))
            twins.append(twin)
    data.setdefault("resources", []).extend(twins)
    return data


def _second_failure(failed_write: dict[str, Any]) -> dict[str, Any]:
    """The failed write again for another group, pulling with the twins of its identities."""
    text = json.dumps(failed_write["body"])
    for identity in (failed_write["body"].get("identity") or {}).get("userAssignedIdentities") or {}:
        text = text.replace(json.dumps(identity)[1:-1], json.dumps(identity + _TWIN)[1:-1])
    return {**failed_write, "resourceId": failed_write["resourceId"] + _TWIN, "body": json.loads(text)}


def one_worker(engine: Engine, _world: Any) -> None:
    """Gather reading one call at a time."""
    engine.gather_options = replace(engine.gather_options, max_workers=1)
