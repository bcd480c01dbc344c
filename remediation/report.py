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
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from remediation.actions import KINDS
from remediation.actions.propose_definition import PROPOSE_DEFINITION
from remediation.actions.redeploy import REDEPLOY
from remediation.model import Action, Finding, Outcome, RedeployResult, Trigger

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
REDACTED = "[redacted]"


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


# --- secrets -----------------------------------------------------------------------------------

_SECRET_LAST_WORDS = frozenset({"password", "passwd", "pwd", "secret", "token", "key", "sig", "signature"})
_SECRET_KEYS = frozenset({"securevalue", "connectionstring", "authorization", "cookie", "setcookie",
                          "protectedsettings"})
_URL_TAIL = r"[^\s\"'<>]*"
_STRING_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"), f"Bearer {REDACTED}"),
    (re.compile(r"(?i)https://hooks\.slack\.com/" + _URL_TAIL), "[redacted-webhook-url]"),
    (re.compile(r"(?i)https://[a-z0-9.-]*webhook\.office\.com/" + _URL_TAIL), "[redacted-webhook-url]"),
    (re.compile(r"(?i)https://outlook\.office(?:365)?\.com/webhook" + _URL_TAIL), "[redacted-webhook-url]"),
    (
        re.compile(r"(?i)https://[a-z0-9.-]+\.logic\.azure\.com(?::\d+)?/workflows/" + _URL_TAIL),
        "[redacted-webhook-url]",
    ),
    (re.compile(r"(?i)https://[a-z0-9.-]+\.api\.powerplatform\.com" + _URL_TAIL), "[redacted-webhook-url]"),
    (
        re.compile(r"(?i)([?&](?:sig|code|key|token|access_token|api[-_]?key|secret|password|pwd)=)[^&\s\"'<>#]+"),
        rf"\1{REDACTED}",
    ),
    (
        re.compile(r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|ClientSecret)=[^;\s\"']+"),
        rf"\1={REDACTED}",
    ),
    (re.compile(r"(?i)(https?://)[^/\s:@\"']+:[^/\s@\"']+@"), rf"\1{REDACTED}@"),
    (
        re.compile(r'(?i)(\\?"(?:password|securevalue|secret|token|accesstoken|key)\\?"\s*:\s*\\?")[^"\\]*(\\?")'),
        rf"\1{REDACTED}\2",
    ),
)


def is_secret_key(key: str) -> bool:
    """Whether a JSON key names a secret: ``password``, ``secureValue``, ``*Token``, ``*Key``, ``webhook*``, ..."""
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", key)]
    if not words:
        return False
    return (
        words[-1] in _SECRET_LAST_WORDS or "".join(words) in _SECRET_KEYS or any(w.startswith("webhook") for w in words)
    )


def scrub(obj: Any, *, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``obj`` with everything secret-looking replaced by ``[redacted]``.

    Secret keys lose their value; strings lose JWTs, bearer tokens, Slack/Teams/Power Automate
    webhook URLs, ``sig=``/``code=``/``key=`` query values, ``AccountKey=``-style pairs, URL
    passwords and embedded JSON secrets; ``secrets`` (known values) are removed anywhere. An
    environment variable whose *name* looks secret loses its ``value``.
    """
    known = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    return _scrub(obj, known)


def _scrub(obj: Any, known: list[str]) -> Any:
    if isinstance(obj, Mapping):
        secret_named = isinstance(obj.get("name"), str) and is_secret_key(obj["name"])
        out: dict[str, Any] = {}
        for key, value in obj.items():
            hide = is_secret_key(str(key)) or (secret_named and key == "value")
            out[key] = REDACTED if hide and value not in (None, "") else _scrub(value, known)
        return out
    if isinstance(obj, (list, tuple)):
        return [_scrub(item, known) for item in obj]
    if isinstance(obj, str):
        return _scrub_text(obj, known)
    return obj


def _scrub_text(text: str, known: list[str]) -> str:
    for value in known:
        text = text.replace(value, REDACTED)
    for pattern, replacement in _STRING_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def find_secrets(obj: Any, path: str = "$") -> list[str]:
    """JSON paths in ``obj`` where something secret-looking remains (empty for a scrubbed report)."""
    found: list[str] = []
    if isinstance(obj, Mapping):
        secret_named = isinstance(obj.get("name"), str) and is_secret_key(obj["name"])
        for key, value in obj.items():
            hide = is_secret_key(str(key)) or (secret_named and key == "value")
            if hide and value not in (None, "", REDACTED):
                found.append(f"{path}.{key}")
            else:
                found.extend(find_secrets(value, f"{path}.{key}"))
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            found.extend(find_secrets(item, f"{path}[{i}]"))
    elif isinstance(obj, str) and _scrub_text(obj, []) != obj:
        found.append(path)
    return found


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
