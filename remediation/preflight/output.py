"""Preflight's three outputs: text for people, a JSON document, and SARIF 2.1.0 for code scanning.

The JSON document (``schemas/preflight.schema.json``)::

    {"schemaVersion": 1,
     "files": [{"path": "...", "kind": "arm", "resources": 4}],
     "findings": [{"code", "summary", "file", "line", "resource", "symbol", "evidence", "fix",
                   "helpUri", "documents", "proposal"}],
     "notes": [{"message", "file", "line"}]}

SARIF follows the OASIS standard (Static Analysis Results Interchange Format Version 2.1.0 Plus
Errata 01, schema ``Schemata/sarif-schema-2.1.0.json`` of oasis-tcs/sarif-spec, commit
0a8091f7d4057e57b6d8d9b56129e5f918747b34): one run; ``tool.driver.rules`` holds every cause the
checks can report, once each, with the cause code as ``id`` and its document as ``helpUri``; each
finding is a ``result`` (``ruleId``, ``ruleIndex``, level ``error``, ``message``, a
``physicalLocation`` whose ``artifactLocation.uri`` is relative to the current directory, and
``region.startLine`` where the parser gave a line). Notes are the invocation's
``toolExecutionNotifications``. Listing every rule, not only those that fired, keeps the rule
indexes stable across runs and tells code scanning which rules a clean run checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from remediation.checks import DOCUMENTS, Check, all_checks
from remediation.preflight.checks import Note, PreflightFinding
from remediation.preflight.model import Definitions, Location

SCHEMA_VERSION = 1
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
TOOL_NAME = "aci-acr-preflight"
_TEXT_EVIDENCE_SKIPPED = frozenset({"assignmentsConsidered", "commands"})
"""Evidence too long for a terminal; the JSON and SARIF outputs keep it."""


@dataclass(frozen=True)
class Result:
    """Everything one preflight run read and found."""

    files: tuple[Definitions, ...]
    findings: tuple[PreflightFinding, ...]
    notes: tuple[Note, ...]


def render(result: Result, output_format: str, *, cwd: Path | None = None) -> str:
    """``result`` as ``text``, ``json`` or ``sarif``."""
    if output_format == "json":
        return json.dumps(document(result), indent=2) + "\n"
    if output_format == "sarif":
        return json.dumps(sarif(result, cwd=cwd or Path.cwd()), indent=2) + "\n"
    return text(result)


_STAND_IN = re.compile(r"principalId\((?:[^)/]*/)*([^)/]+)\)")


def for_people(text: str) -> str:
    """``text`` with each principal id stand-in (:func:`~remediation.preflight.model.principal_of`)
    said as what it is: an id Azure gives the declared identity only when it is deployed."""
    return _STAND_IN.sub(lambda m: f"<{m.group(1)}'s id, once deployed>", text)


def text(result: Result) -> str:
    """For people: ``file:line: CODE summary``, the evidence that matters, the fix and the document."""
    lines: list[str] = []
    for f in result.findings:
        lines.append(f"{_where(f.location)}: {f.code} {for_people(f.summary)}")
        lines.append(f"    resource: {f.symbol or f.resource}")
        for key, value in f.evidence.items():
            if key not in _TEXT_EVIDENCE_SKIPPED and value not in (None, "", [], {}):
                lines.append(f"    {key}: {for_people(_short(value))}")
        lines.append(f"    fix: {for_people(f.fix)}")
        lines.append(f"    see: {f.help_uri}")
    for note in result.notes:
        lines.append(f"{_where(note.location)}: note: {note.message}")
    files = len(result.files)
    count = len(result.findings)
    lines.append(f"{count} finding{'' if count == 1 else 's'} in {files} file{'' if files == 1 else 's'}"
                 + (f", {len(result.notes)} note{'' if len(result.notes) == 1 else 's'}" if result.notes else "")
                 + ("" if count else ": nothing here would fail to pull"))
    return "\n".join(lines) + "\n"


def document(result: Result) -> dict[str, Any]:
    """The JSON document (see the module docstring)."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "files": [{"path": d.path, "kind": d.kind, "resources": len(d.resources)} for d in result.files],
        "findings": [
            {
                "code": f.code,
                "summary": f.summary,
                "file": f.location.file,
                "line": f.location.line,
                "resource": f.resource,
                "symbol": f.symbol,
                "evidence": f.evidence,
                "fix": f.fix,
                "helpUri": f.help_uri,
                "documents": list(f.documents),
                "proposal": f.proposal,
            }
            for f in result.findings
        ],
        "notes": [{"message": n.message, "file": n.location.file, "line": n.location.line} for n in result.notes],
    }


def rules() -> list[Check]:
    """The SARIF rules: every registered check, in report order."""
    return all_checks()


def sarif(result: Result, *, cwd: Path) -> dict[str, Any]:
    """The SARIF 2.1.0 log of ``result`` (see the module docstring)."""
    checks = rules()
    index = {c.code: i for i, c in enumerate(checks)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL_NAME,
                "informationUri": "https://learn.microsoft.com/troubleshoot/azure/azure-container-instances/"
                                  "management/acr-image-pull-failures-managed-identity",
                "rules": [_rule(c) for c in checks],
            }},
            "invocations": [{
                "executionSuccessful": True,
                "toolExecutionNotifications": [_notification(n, cwd) for n in result.notes],
            }],
            "results": [_result(f, index[f.code], cwd) for f in result.findings if f.code in index],
        }],
    }


def _rule(check: Check) -> dict[str, Any]:
    first = check.doc.split("; ")[0].split(". ")[0].rstrip(".")
    return {
        "id": check.code,
        "shortDescription": {"text": first + "."},
        "fullDescription": {"text": check.doc},
        "helpUri": DOCUMENTS[check.source].url,
        "help": {"text": check.doc + " See " + DOCUMENTS[check.source].url},
        "defaultConfiguration": {"level": "error"},
    }


def _result(finding: PreflightFinding, rule_index: int, cwd: Path) -> dict[str, Any]:
    return {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": "error",
        "message": {"text": for_people(f"{finding.summary} Fix: {finding.fix}")},
        "locations": [_location(finding.location, cwd)],
        "properties": {"resource": finding.symbol or finding.resource, "evidence": finding.evidence},
    }


def _notification(note: Note, cwd: Path) -> dict[str, Any]:
    return {"level": "note", "message": {"text": note.message}, "locations": [_location(note.location, cwd)]}


def _location(where: Location, cwd: Path) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(where.file, cwd)}}
    if where.line:
        physical["region"] = {"startLine": where.line}
    return {"physicalLocation": physical}


def artifact_uri(file: str, cwd: Path) -> str:
    """``file`` as a URI reference relative to ``cwd`` (a ``file:`` URI where it lies outside it)."""
    absolute = Path(file).resolve()
    try:
        relative = absolute.relative_to(cwd.resolve())
    except ValueError:
        return absolute.as_uri()
    return quote(relative.as_posix())


def _where(location: Location) -> str:
    return f"{location.file}:{location.line}" if location.line else location.file


def _short(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, default=str)


def exit_code(findings: Iterable[PreflightFinding]) -> int:
    """0 when nothing would fail, 1 when something would."""
    return 1 if any(True for _ in findings) else 0

