"""The remediation report (CONTRACT.md §2): built, scrubbed of secrets, validated.

Every run produces one report with the required keys of the contract plus these extras (present
when known): ``eventId``, ``dryRun``, ``startedAt``, ``finishedAt``, ``durationSeconds``,
``timings`` (seconds per stage), ``skipReason``, ``error``, ``errorMessage``, ``notes``,
``warnings`` (Azure Policy assignments that would deny or modify what a fix writes),
``proposedDefinition`` (a corrected, redacted body) and ``commands`` (what a person can run for
actions the app did not apply). Causes carry ``source`` and actions ``cause``/``params`` as extras.

:func:`build_report` always returns a scrubbed report; :func:`validate_report` raises
:class:`ReportError` when a report does not fit the report's JSON Schema (published as
``schemas/report.schema.json``) or still holds something secret-looking.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from remediation.actions import KINDS
from remediation.actions.propose_definition import PROPOSE_DEFINITION
from remediation.actions.redeploy import REDEPLOY
from remediation.model import Action, Finding, Outcome, RedeployResult, Trigger
from remediation.redaction import find_secrets, scrub

SCHEMA_VERSION = 1


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
    if any(a.status == "applied" and a.kind != REDEPLOY.name for a in actions):
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
    warnings: Sequence[str] = (),
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
        "warnings": list(warnings) or None,
        "proposedDefinition": _proposed_definition(actions),
        "commands": commands_for(actions) if final != "skipped" else None,
    }
    report.update({k: v for k, v in extras.items() if v is not None and v != []})
    scrubbed: dict[str, Any] = scrub(report, secrets=secrets)
    return scrubbed


def commands_for(actions: Sequence[Action]) -> list[str]:
    """Azure CLI commands a person can run for the fixes that were not applied.

    Each kind gives its own (``FixKind.command``), only for actions of the shapes the app itself
    would perform, so a refused (tampered) action is never turned into advice.
    """
    commands: list[str] = []
    for a in actions:
        kind = KINDS.get(a.kind)
        command = kind.command(a) if kind is not None and a.status != "applied" else None
        if command:
            commands.append(command)
    return list(dict.fromkeys(commands))


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
        body = a.params.get("definition") if a.kind == PROPOSE_DEFINITION.name else None
        if isinstance(body, dict):
            return body
    return None


def _failure_reason(actions: Sequence[Action], redeploy: RedeployResult | None) -> str | None:
    failed = [f"{a.kind} {a.target}: {a.detail}" for a in actions if a.status == "failed"]
    if redeploy is not None and redeploy.status == "failed":
        failed.append(f"redeploy: {redeploy.detail or (redeploy.error.code if redeploy.error else 'failed')}")
    return "; ".join(failed) or None


# --- validation --------------------------------------------------------------------------------

SCHEMA_FILE = resources.files("remediation") / "report.schema.json"
"""The report's JSON Schema (draft 2020-12), published as ``schemas/report.schema.json``."""

_TYPE_NAMES = {"object": "a JSON object", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "a boolean", "null": "null"}


@functools.cache
def report_schema() -> dict[str, Any]:
    """The report's JSON Schema, as webhook and Event Grid consumers can validate against it."""
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(report_schema())


REQUIRED_KEYS: tuple[str, ...] = tuple(report_schema()["required"])
"""The top-level keys every report has (CONTRACT.md §2)."""


def validate_report(report: Any) -> None:
    """Raise :class:`ReportError` unless ``report`` fits :func:`report_schema`, is JSON and holds no
    secret-looking value. The message is one line naming every field at fault."""
    problems = _problems(report)
    if problems:
        raise ReportError("invalid report: " + "; ".join(problems))


def _problems(report: Any) -> list[str]:
    problems: list[str] = []
    seen: set[tuple[Any, ...]] = set()
    for error in sorted(_validator().iter_errors(report), key=lambda e: [str(step) for step in e.absolute_path]):
        if error.validator == "required":
            # one error per missing key, all alike: describe the keyword once, naming every key
            node = (*error.absolute_path, None, *error.absolute_schema_path)
            if node in seen:
                continue
            seen.add(node)
        problems += _describe(error)
    try:
        json.dumps(report)
    except (TypeError, ValueError) as exc:
        problems.append(f"not JSON-serialisable: {exc}")
    problems += [f"secret-looking value at {p}" for p in find_secrets(report)]
    return problems


def _describe(error: ValidationError) -> list[str]:
    """One line per problem, naming the field: ``actions[0].status must be one of ...``.

    A schema node's ``errorMessage`` (a string, or one per keyword) replaces the generic wording;
    a missing key takes its own node's.
    """
    where = _json_path(error.absolute_path)
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        lines = []
        for key in error.validator_value:
            if key not in present:
                field = f"{where}.{key}" if where else str(key)
                own = _custom(error.schema.get("properties", {}).get(key), "required")
                lines.append(f"{field} {own}" if own else f"missing key {field}")
        return lines
    text = _custom(error.schema, str(error.validator)) or _wording(error)
    return [f"{where} {text}" if where else f"a report {text}"]


def _custom(node: Any, keyword: str) -> str | None:
    """The ``errorMessage`` a schema node gives for a failed ``keyword``, if any."""
    custom = node.get("errorMessage") if isinstance(node, dict) else None
    if isinstance(custom, dict):
        custom = custom.get(keyword)
    return str(custom) if custom else None


def _wording(error: ValidationError) -> str:
    value = error.validator_value
    if error.validator == "type":
        names = [value] if isinstance(value, str) else list(value)
        return f"must be {' or '.join(_TYPE_NAMES.get(n, n) for n in names)}, got {_json_type(error.instance)}"
    if error.validator == "enum":
        return f"must be one of {', '.join(str(v) for v in value)}, got {error.instance!r}"
    if error.validator == "const":
        return f"must be {json.dumps(value)}"
    if error.validator == "minLength" and value == 1:
        return "must be a non-empty string"
    return " ".join(str(error.message).split())


def _json_path(steps: Iterable[Any]) -> str:
    path = ""
    for step in steps:
        path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else str(step))
    return path


def _json_type(value: Any) -> str:
    for name, kinds in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float), ("string", str),
                        ("array", list), ("object", dict)):
        if isinstance(value, kinds):
            return name
    return type(value).__name__
