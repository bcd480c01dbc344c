"""The remediation report (CONTRACT.md §2): built, scrubbed of secrets, validated.

Every run produces one report with the required keys of the contract plus these extras (present
when known): ``eventId``, ``dryRun``, ``startedAt``, ``finishedAt``, ``durationSeconds``,
``timings`` (seconds per stage), ``skipReason``, ``error``, ``errorMessage``, ``notes``,
``proposedDefinition`` (a corrected, redacted body) and ``commands`` (what a person can run for
actions the app did not apply). Causes carry ``source`` and actions ``cause``/``params`` as extras.

:func:`build_report` always returns a scrubbed report; :func:`validate_report` raises
:class:`ReportError` when a report breaks the contract or still holds something secret-looking.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from remediation.model import CURRENT_ACI_API_VERSION, Action, Finding, Outcome, RedeployResult, Trigger
from remediation.plan.enable_trusted_services import TRUSTED_SERVICES_PATCH
from remediation.plan.roles import ACR_PULL_ROLE_GUID, REPOSITORY_READER_ROLE_GUID, is_registry_id
from remediation.redaction import find_secrets, scrub

SCHEMA_VERSION = 1
TRIGGERS = ("eventgrid", "replay", "sweep", "cli")
OUTCOMES = ("remediated", "fixed-awaiting-redeploy", "diagnosed", "dry-run", "skipped", "failed")
ACTION_STATUSES = ("applied", "planned", "skipped", "failed")
REDEPLOY_STATUSES = ("succeeded", "failed", "skipped")
CHANNELS = ("teams", "slack", "webhook", "eventgrid")
NOTIFICATION_STATUSES = ("sent", "failed", "disabled")
REQUIRED_KEYS = (
    "schemaVersion",
    "resourceId",
    "correlationId",
    "trigger",
    "errorCode",
    "outcome",
    "causes",
    "actions",
    "redeploy",
    "notifications",
)


class ReportError(ValueError):
    """A report that breaks the contract; the message lists every problem."""


def outcome_for(
    *,
    actions: Sequence[Action],
    redeploy: RedeployResult | None,
    dry_run: bool = False,
    skip_reason: str | None = None,
    error: str | None = None,
) -> Outcome:
    """The run's outcome from the final action statuses and the redeploy result.

    ``failed`` (the run could not finish, or a write or the redeploy failed) > ``skipped`` >
    ``dry-run`` > ``remediated`` (the redeploy succeeded) > ``fixed-awaiting-redeploy`` (fixes
    applied, no successful redeploy, e.g. no definition to redeploy from) > ``diagnosed``.
    """
    if error:
        return "failed"
    if skip_reason:
        return "skipped"
    if dry_run:
        return "dry-run"
    if any(a.status == "failed" for a in actions) or (redeploy is not None and redeploy.status == "failed"):
        return "failed"
    if redeploy is not None and redeploy.status == "succeeded":
        return "remediated"
    if any(a.status == "applied" and a.kind != "redeploy" for a in actions):
        return "fixed-awaiting-redeploy"
    return "diagnosed"


def build_report(
    *,
    resource_id: str,
    trigger: Trigger,
    correlation_id: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    findings: Sequence[Finding] = (),
    actions: Sequence[Action] = (),
    redeploy: RedeployResult | None = None,
    notifications: Sequence[Mapping[str, Any]] = (),
    outcome: Outcome | None = None,
    dry_run: bool = False,
    skip_reason: str | None = None,
    error: str | None = None,
    event_id: str | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    timings: Mapping[str, float] | None = None,
    notes: Sequence[str] = (),
    secrets: Iterable[str] = (),
) -> dict[str, Any]:
    """The scrubbed report of one run. ``outcome`` defaults to :func:`outcome_for`.

    ``notifications`` are mappings with ``channel``, ``status`` and optionally ``detail``;
    ``secrets`` are known secret values (e.g. ``Settings.secret_values()``) removed wherever they appear.
    """
    final = outcome or outcome_for(
        actions=actions, redeploy=redeploy, dry_run=dry_run, skip_reason=skip_reason, error=error
    )
    report: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "resourceId": resource_id,
        "correlationId": correlation_id,
        "trigger": trigger,
        "errorCode": error_code,
        "outcome": final,
        "causes": [_cause(f) for f in findings],
        "actions": [_action(a) for a in actions],
        "redeploy": _redeploy(redeploy),
        "notifications": [_notification(n) for n in notifications],
        "dryRun": dry_run,
    }
    extras: dict[str, Any] = {
        "eventId": event_id,
        "errorMessage": error_message,
        "skipReason": skip_reason,
        "error": error or (_failure_reason(actions, redeploy) if final == "failed" else None),
        "startedAt": started_at.isoformat() if started_at else None,
        "finishedAt": finished_at.isoformat() if finished_at else None,
        "durationSeconds": round((finished_at - started_at).total_seconds(), 3) if started_at and finished_at else None,
        "timings": {k: round(v, 3) for k, v in timings.items()} if timings else None,
        "notes": list(notes) or None,
        "proposedDefinition": _proposed_definition(actions),
        "commands": commands_for(actions) if final != "skipped" else None,
    }
    report.update({k: v for k, v in extras.items() if v is not None and v != []})
    scrubbed: dict[str, Any] = scrub(report, secrets=secrets)
    return scrubbed


def commands_for(actions: Sequence[Action]) -> list[str]:
    """Azure CLI commands a person can run for the fixes that were not applied.

    Only for actions of the shapes the app itself would perform, so a refused (tampered) action
    is never turned into advice.
    """
    commands: list[str] = []
    for a in actions:
        if a.status == "applied":
            continue
        p = a.params
        if a.kind == "assign-role" and _safe_assignment(a):
            role = str(p["roleDefinitionId"]).rsplit("/", 1)[-1]
            commands.append(
                f"az role assignment create --assignee-object-id {p['principalId']} "
                f"--assignee-principal-type ServicePrincipal --role {role} --scope {p['scope']}"
            )
        elif a.kind == "enable-trusted-services" and p == TRUSTED_SERVICES_PATCH and is_registry_id(a.target):
            parts = a.target.split("/")
            commands.append(
                f"az acr update --subscription {parts[2]} --resource-group {parts[4]} --name {parts[8]} "
                "--allow-trusted-services true"
            )
        elif a.kind == "redeploy" and a.status == "skipped" and "/containergroups/" in a.target.lower():
            parts = a.target.split("/")
            commands.append(
                f"az deployment group create --subscription {parts[2]} --resource-group {parts[4]} "
                f"--template-file <the template that deploys {parts[-1]}>  # redeploy now that the fix is in place"
            )
        elif a.kind == "propose-definition" and isinstance(p.get("definition"), dict):
            commands.append(
                "az rest --method put "
                f'--url "https://management.azure.com{a.target}'
                f'?api-version={p.get("apiVersion", CURRENT_ACI_API_VERSION)}" '
                "--body @corrected-definition.json  # proposedDefinition, with any redacted secrets filled back in"
            )
    return list(dict.fromkeys(commands))


def _safe_assignment(a: Action) -> bool:
    p = a.params
    role = str(p.get("roleDefinitionId", "")).rsplit("/", 1)[-1].lower()
    return (
        role in (ACR_PULL_ROLE_GUID, REPOSITORY_READER_ROLE_GUID)
        and str(p.get("scope", "")).lower() == a.target.lower()
        and is_registry_id(a.target)
        and p.get("principalType") == "ServicePrincipal"
    )


def _cause(f: Finding) -> dict[str, Any]:
    cause: dict[str, Any] = {"code": f.code, "summary": f.summary, "evidence": dict(f.evidence), "fixable": f.fixable}
    if f.source:
        cause["source"] = f.source
    return cause


def _action(a: Action) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": a.kind, "target": a.target, "status": a.status, "detail": a.detail}
    if a.cause:
        entry["cause"] = a.cause
    params = {k: v for k, v in a.params.items() if k != "definition"}
    if params:
        entry["params"] = params
    return entry


def _redeploy(result: RedeployResult | None) -> dict[str, Any]:
    if result is None:
        return {"status": "skipped", "attempts": 0}
    entry: dict[str, Any] = {"status": result.status, "attempts": result.attempts}
    if result.detail:
        entry["detail"] = result.detail
    if result.error is not None:
        entry["error"] = {"code": result.error.code, "message": result.error.message}
    return entry


def _notification(n: Mapping[str, Any]) -> dict[str, Any]:
    entry = {"channel": n.get("channel"), "status": n.get("status")}
    if n.get("detail"):
        entry["detail"] = n["detail"]
    return entry


def _proposed_definition(actions: Sequence[Action]) -> dict[str, Any] | None:
    for a in actions:
        body = a.params.get("definition") if a.kind == "propose-definition" else None
        if isinstance(body, dict):
            return body
    return None


def _failure_reason(actions: Sequence[Action], redeploy: RedeployResult | None) -> str | None:
    failed = [f"{a.kind} {a.target}: {a.detail}" for a in actions if a.status == "failed"]
    if redeploy is not None and redeploy.status == "failed":
        failed.append(f"redeploy: {redeploy.detail or (redeploy.error.code if redeploy.error else 'failed')}")
    return "; ".join(failed) or None


# --- validation --------------------------------------------------------------------------------


def validate_report(report: Any) -> None:
    """Raise :class:`ReportError` unless ``report`` has the contract's keys, types and enum values."""
    problems = _problems(report)
    if problems:
        raise ReportError("invalid report: " + "; ".join(problems))


def _problems(report: Any) -> list[str]:
    if not isinstance(report, dict):
        return [f"a report is a JSON object, got {type(report).__name__}"]
    problems = [f"missing key {key}" for key in REQUIRED_KEYS if key not in report]
    get = report.get
    if "schemaVersion" in report and get("schemaVersion") != SCHEMA_VERSION:
        problems.append(f"schemaVersion must be {SCHEMA_VERSION}")
    if "resourceId" in report and not (isinstance(get("resourceId"), str) and get("resourceId")):
        problems.append("resourceId must be a non-empty string")
    for key in ("correlationId", "errorCode"):
        if get(key) is not None and not isinstance(get(key), str):
            problems.append(f"{key} must be a string or null")
    _enum(problems, "trigger", get("trigger"), TRIGGERS, "trigger" in report)
    _enum(problems, "outcome", get("outcome"), OUTCOMES, "outcome" in report)
    problems += _each(get("causes", []), "causes", {"code": str, "summary": str, "evidence": dict, "fixable": bool})
    problems += _each(get("actions", []), "actions", {"kind": str, "target": str, "status": str, "detail": str})
    for i, action in enumerate(get("actions", []) if isinstance(get("actions"), list) else []):
        if isinstance(action, dict):
            _enum(problems, f"actions[{i}].status", action.get("status"), ACTION_STATUSES, True)
    problems += _each(get("notifications", []), "notifications", {"channel": str, "status": str})
    for i, note in enumerate(get("notifications", []) if isinstance(get("notifications"), list) else []):
        if isinstance(note, dict):
            _enum(problems, f"notifications[{i}].channel", note.get("channel"), CHANNELS, True)
            _enum(problems, f"notifications[{i}].status", note.get("status"), NOTIFICATION_STATUSES, True)
    redeploy = get("redeploy")
    if "redeploy" in report:
        if not isinstance(redeploy, dict):
            problems.append("redeploy must be an object")
        else:
            _enum(problems, "redeploy.status", redeploy.get("status"), REDEPLOY_STATUSES, True)
            attempts = redeploy.get("attempts")
            if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
                problems.append("redeploy.attempts must be a whole number")
    problems += _consistency(report)
    try:
        json.dumps(report)
    except (TypeError, ValueError) as exc:
        problems.append(f"not JSON-serialisable: {exc}")
    problems += [f"secret-looking value at {p}" for p in find_secrets(report)]
    return problems


def _consistency(report: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    outcome = report.get("outcome")
    raw_actions = report.get("actions")
    actions: list[Any] = raw_actions if isinstance(raw_actions, list) else []
    raw_redeploy = report.get("redeploy")
    redeploy: dict[str, Any] = raw_redeploy if isinstance(raw_redeploy, dict) else {}
    if outcome == "dry-run" and any(isinstance(a, dict) and a.get("status") == "applied" for a in actions):
        problems.append("a dry-run report cannot have applied actions")
    if outcome == "remediated" and redeploy.get("status") != "succeeded":
        problems.append("a remediated report needs a succeeded redeploy")
    if outcome == "failed" and not report.get("error"):
        problems.append("a failed report must say why in error")
    if outcome == "skipped" and not report.get("skipReason"):
        problems.append("a skipped report must say why in skipReason")
    return problems


def _enum(problems: list[str], name: str, value: Any, allowed: tuple[str, ...], present: bool) -> None:
    if present and value not in allowed:
        problems.append(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _each(items: Any, name: str, shape: dict[str, type]) -> list[str]:
    if not isinstance(items, list):
        return [f"{name} must be a list"]
    problems: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"{name}[{i}] must be an object")
            continue
        for key, kind in shape.items():
            if not isinstance(item.get(key), kind):
                problems.append(f"{name}[{i}].{key} must be {kind.__name__}")
    return problems
