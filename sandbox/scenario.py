"""Scenario files (CONTRACT.md §3): load, validate, and explain what is wrong in one line."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_RESOURCE_ID = re.compile(r"^/subscriptions/[^/]+(/.*)?$", re.IGNORECASE)
SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_SCENARIO = SCENARIO_DIR / "missing-acrpull.json"


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
    behaviour: dict[str, Any] = field(default_factory=dict)
    failed_write: dict[str, Any] | None = None
    expect: dict[str, Any] | None = None
    settings: dict[str, str] = field(default_factory=dict)
    source: str = "<dict>"
    raw: dict[str, Any] = field(default_factory=dict)


def _need(cond: bool, where: str, problem: str) -> None:
    if not cond:
        raise ScenarioError(f"{where}: {problem}")


def _validate_fault(fault: Any, where: str) -> None:
    _need(isinstance(fault, dict), where, "must be an object")
    match = fault.get("match")
    _need(isinstance(match, str) and " " in match.strip(), f"{where}.match",
          "must be 'METHOD PATH-PATTERN', e.g. 'PUT */roleAssignments/*'")
    for key in ("status", "times"):
        if key in fault:
            _need(isinstance(fault[key], int) and not isinstance(fault[key], bool), f"{where}.{key}",
                  "must be an integer")
    for key in ("retryAfter", "latency"):
        if key in fault:
            _need(isinstance(fault[key], (int, float)) and fault[key] >= 0, f"{where}.{key}",
                  "must be a number of seconds >= 0")
    _need("status" in fault or fault.get("reset") or "latency" in fault or "deliver" in fault, where,
          "needs one of status, reset, latency or deliver")


def parse_scenario(data: Any, source: str = "<dict>") -> Scenario:
    """Validate a scenario already read as JSON."""
    _need(isinstance(data, dict), source, "a scenario must be a JSON object")
    name = data.get("name")
    _need(isinstance(name, str) and bool(name.strip()), f"{source}: name", "is missing or empty")
    tenant = data.get("tenantId", "00000000-0000-0000-0000-0000000000aa")
    _need(isinstance(tenant, str) and bool(_GUID.match(tenant)), f"{source}: tenantId", "must be a GUID")
    subs = data.get("subscriptions")
    _need(isinstance(subs, list) and bool(subs), f"{source}: subscriptions", "must be a non-empty list")
    for i, s in enumerate(subs):
        _need(isinstance(s, str) and bool(_GUID.match(s)), f"{source}: subscriptions[{i}]", "must be a GUID")
    resources = data.get("resources", [])
    _need(isinstance(resources, list), f"{source}: resources", "must be a list")
    seen: set[str] = set()
    sub_set = {s.lower() for s in subs}
    for i, r in enumerate(resources):
        where = f"{source}: resources[{i}]"
        _need(isinstance(r, dict), where, "must be an object")
        rid = r.get("id")
        _need(isinstance(rid, str) and bool(_RESOURCE_ID.match(rid)), f"{where}.id",
              "must be a resource id starting with /subscriptions/")
        _need(rid.split("/")[2].lower() in sub_set, f"{where}.id",
              f"subscription {rid.split('/')[2]} is not in subscriptions")
        _need(rid.lower() not in seen, f"{where}.id", "appears twice")
        seen.add(rid.lower())
        rtype = r.get("type")
        _need(isinstance(rtype, str) and "/" in rtype, f"{where}.type", "must be an ARM type like Microsoft.X/y")
        props = r.get("properties", {})
        _need(isinstance(props, dict), f"{where}.properties", "must be an object")
        if rtype.lower() == "microsoft.authorization/roleassignments":
            for key in ("scope", "roleDefinitionId", "principalId"):
                _need(isinstance(props.get(key), str), f"{where}.properties.{key}", "is missing")
        if rtype.lower() == "microsoft.containerregistry/registries":
            _need(isinstance(props.get("loginServer"), str), f"{where}.properties.loginServer", "is missing")
        if rtype.lower() == "microsoft.managedidentity/userassignedidentities":
            _need(isinstance(props.get("principalId"), str), f"{where}.properties.principalId", "is missing")
    roles = data.get("roleDefinitions", [])
    _need(isinstance(roles, list), f"{source}: roleDefinitions", "must be a list")
    for i, role in enumerate(roles):
        where = f"{source}: roleDefinitions[{i}]"
        _need(isinstance(role, dict) and isinstance(role.get("id"), str), f"{where}.id", "is missing")
        perms = role.get("properties", {}).get("permissions")
        _need(isinstance(perms, list), f"{where}.properties.permissions", "must be a list")
    images = data.get("images", {})
    _need(isinstance(images, dict), f"{source}: images", "must map login server to {repository: [tags]}")
    for server, repos in images.items():
        _need(isinstance(repos, dict), f"{source}: images.{server}", "must map repository to a list of tags")
        for repo, tags in repos.items():
            _need(isinstance(tags, list) and all(isinstance(t, str) for t in tags),
                  f"{source}: images.{server}.{repo}", "must be a list of tags")
    remediator = data.get("remediator")
    if remediator is not None:
        _need(isinstance(remediator, dict) and isinstance(remediator.get("principalId"), str),
              f"{source}: remediator.principalId", "is missing")
    behaviour = data.get("behaviour", {})
    _need(isinstance(behaviour, dict), f"{source}: behaviour", "must be an object")
    for key in ("rbacPropagationSeconds", "networkPropagationSeconds", "activityLogLagSeconds", "latencySeconds"):
        if key in behaviour:
            _need(isinstance(behaviour[key], (int, float)) and behaviour[key] >= 0,
                  f"{source}: behaviour.{key}", "must be a number of seconds >= 0")
    faults = behaviour.get("faults", [])
    _need(isinstance(faults, list), f"{source}: behaviour.faults", "must be a list")
    for i, fault in enumerate(faults):
        _validate_fault(fault, f"{source}: behaviour.faults[{i}]")
    failed = data.get("failedWrite")
    if failed is not None:
        where = f"{source}: failedWrite"
        _need(isinstance(failed, dict), where, "must be an object")
        rid = failed.get("resourceId")
        _need(isinstance(rid, str) and "/providers/microsoft.containerinstance/containergroups/" in rid.lower(),
              f"{where}.resourceId", "must be a container group resource id")
        _need(rid.split("/")[2].lower() in sub_set, f"{where}.resourceId",
              f"subscription {rid.split('/')[2]} is not in subscriptions")
        _need(failed.get("via", "direct") in ("direct", "deployment"), f"{where}.via",
              "must be 'direct' or 'deployment'")
        _need(isinstance(failed.get("body"), dict), f"{where}.body", "must be the container group JSON")
        _need(isinstance(failed.get("apiVersion", "2023-05-01"), str), f"{where}.apiVersion", "must be a string")
    expect = data.get("expect")
    if expect is not None:
        _need(isinstance(expect, dict), f"{source}: expect", "must be an object")
    settings = data.get("settings", {})
    _need(isinstance(settings, dict) and all(isinstance(v, str) for v in settings.values()),
          f"{source}: settings", "must map setting names to strings")
    return Scenario(
        name=name,
        description=str(data.get("description", "")),
        tenant_id=tenant,
        subscriptions=list(subs),
        resources=resources,
        role_definitions=roles,
        images=images,
        remediator=remediator,
        behaviour=behaviour,
        failed_write=failed,
        expect=expect,
        settings=dict(settings),
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
