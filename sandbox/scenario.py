"""Scenario files (CONTRACT.md §3): load, validate against ``schemas/scenario.schema.json``, and
explain what is wrong in one line."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_SCENARIO = SCENARIO_DIR / "missing-acrpull.json"
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "scenario.schema.json"
"""The scenario file's JSON Schema (draft 2020-12), published at the repository's root."""


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message is one line naming the problem."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    tenant_id: str
    subscriptions: list[str]
    resources: list[dict[str, Any]]
    role_definitions: list[dict[str, Any]] = field(default_factory=list)
    images: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    remediator: dict[str, Any] | None = None
    deployer: dict[str, Any] | None = None
    """Who makes the failed write; None: the sandbox's user (``sandbox.runtime.USER_PRINCIPAL``)."""
    groups: dict[str, list[str]] = field(default_factory=dict)
    """An Entra group's object id → its members' object ids (users, service principals, groups)."""
    later_writes: list[dict[str, Any]] = field(default_factory=list)
    """What the deployer does to the failed group after the failure (``laterWrites``)."""
    behaviour: dict[str, Any] = field(default_factory=dict)
    failed_write: dict[str, Any] | None = None
    expect: dict[str, Any] | None = None
    settings: dict[str, str] = field(default_factory=dict)
    source: str = "<dict>"
    raw: dict[str, Any] = field(default_factory=dict)


def _need(cond: bool, where: str, problem: str) -> None:
    if not cond:
        raise ScenarioError(f"{where}: {problem}")


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def _schema_problem(data: Any, source: str) -> str | None:
    """The first problem :data:`SCHEMA_FILE` finds, as one line naming the field, or None."""
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(step) for step in e.absolute_path])
    if not errors:
        return None
    error = errors[0]
    where = ""
    for step in error.absolute_path:
        where += f"[{step}]" if isinstance(step, int) else (f".{step}" if where else str(step))
    custom = _custom(error.schema, str(error.validator))
    if error.validator == "required":
        # a missing key takes its own node's wording
        present = error.instance if isinstance(error.instance, dict) else {}
        missing = next(str(key) for key in error.validator_value if key not in present)
        where = f"{where}.{missing}" if where else missing
        custom = _custom(error.schema.get("properties", {}).get(missing), "required") or "is missing"
    problem = str(custom) if custom else " ".join(str(error.message).split())
    return f"{source}: {where}: {problem}" if where else f"{source}: {problem}"


def _custom(node: Any, keyword: str) -> str | None:
    """The ``errorMessage`` a schema node gives for a failed ``keyword``, if any."""
    custom = node.get("errorMessage") if isinstance(node, dict) else None
    if isinstance(custom, dict):
        custom = custom.get(keyword)
    return str(custom) if custom else None


def parse_scenario(data: Any, source: str = "<dict>") -> Scenario:
    """Validate a scenario already read as JSON: against :data:`SCHEMA_FILE`, then what a schema
    cannot say (every id in the listed subscriptions, no resource twice)."""
    problem = _schema_problem(data, source)
    if problem:
        raise ScenarioError(problem)
    subs = data["subscriptions"]
    sub_set = {s.lower() for s in subs}
    resources = data.get("resources", [])
    seen: set[str] = set()
    for i, r in enumerate(resources):
        where, rid = f"{source}: resources[{i}].id", r["id"]
        _need(rid.split("/")[2].lower() in sub_set, where, f"subscription {rid.split('/')[2]} is not in subscriptions")
        _need(rid.lower() not in seen, where, "appears twice")
        seen.add(rid.lower())
    failed = data.get("failedWrite")
    if failed is not None:
        rid = failed["resourceId"]
        _need(rid.split("/")[2].lower() in sub_set, f"{source}: failedWrite.resourceId",
              f"subscription {rid.split('/')[2]} is not in subscriptions")
    return Scenario(
        name=data["name"],
        description=str(data.get("description", "")),
        tenant_id=data.get("tenantId", "00000000-0000-0000-0000-0000000000aa"),
        subscriptions=list(subs),
        resources=resources,
        role_definitions=data.get("roleDefinitions", []),
        images=data.get("images", {}),
        remediator=data.get("remediator"),
        deployer=data.get("deployer"),
        groups={str(g): [str(m) for m in members] for g, members in data.get("groups", {}).items()},
        later_writes=list(data.get("laterWrites", [])),
        behaviour=data.get("behaviour", {}),
        failed_write=failed,
        expect=data.get("expect"),
        settings=dict(data.get("settings", {})),
        source=source,
        raw=data,
    )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises ScenarioError with a one-line message."""
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(f"{p}: no such scenario file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{p}: not UTF-8 text") from None
    return parse_scenario(data, str(p))


def bundled_scenarios() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.json"))
