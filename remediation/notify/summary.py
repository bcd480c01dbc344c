"""What every notification says about a report, independent of the channel's format.

Pure functions of the report dict (CONTRACT.md §2): the outcome's emoji and wording, the resource's
name and portal link, the key evidence of a cause, durations, a compact summary for machine
channels, and text clipping. The Teams and Slack renderers add only their own markup and escaping.

Links in a notification come only from the app itself: the Azure portal link built here and the
Microsoft Learn documents a cause cites (:func:`document_links`). Text taken from the report is
shown, never turned into a link.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class OutcomeStyle:
    emoji: str
    label: str
    teams_style: str
    """Adaptive Card container style: good, warning, attention, accent, emphasis or default."""
    headline: str
    """What the outcome means for the person reading it."""


OUTCOMES: dict[str, OutcomeStyle] = {
    "remediated": OutcomeStyle("✅", "Remediated", "good", "Fixed and redeployed; nothing left to do."),
    "fixed-awaiting-redeploy": OutcomeStyle(
        "🛠️", "Fixed, awaiting redeploy", "warning", "Fixes applied; redeploy the container group to pick them up."
    ),
    "diagnosed": OutcomeStyle("🔍", "Diagnosed", "warning", "Cause found; a person must act."),
    "dry-run": OutcomeStyle("🧪", "Dry run", "accent", "Nothing was changed; these are the fixes the app would apply."),
    "skipped": OutcomeStyle("⏭️", "Skipped", "emphasis", "Not handled by the app."),
    "failed": OutcomeStyle("❌", "Failed", "attention", "The remediation did not finish; a person must look."),
}
UNKNOWN_OUTCOME = OutcomeStyle("❔", "Unknown outcome", "default", "")

ACTION_STATUS_EMOJI = {"applied": "✅", "planned": "📝", "skipped": "⏭️", "failed": "❌"}
REDEPLOY_STATUS_EMOJI = {"succeeded": "✅", "failed": "❌", "skipped": "⏭️"}

PORTAL = "https://portal.azure.com"
MAX_ID = 1500
"""Longer ids get no portal link (real ARM ids are far shorter), so a link never breaks a size limit."""
DOC_PREFIXES = ("https://learn.microsoft.com/", "https://aka.ms/")
"""Documents a cause cites are linked only when they point here."""

_RESOURCE_ID = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/(?P<ns>[^/]+)/(?P<rest>.+)", re.IGNORECASE
)
_SAFE_ID = re.compile(r"/subscriptions/[0-9A-Fa-f-]{36}(/[A-Za-z0-9._()~@,;:=+-]+)*")
_TENANT = re.compile(r"[0-9A-Fa-f-]{36}|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def style(report: Mapping[str, Any]) -> OutcomeStyle:
    return OUTCOMES.get(str(report.get("outcome")), UNKNOWN_OUTCOME)


@dataclass(frozen=True)
class ResourceName:
    name: str
    kind: str
    """``Container group``, ``Registry``, ... or the ARM type when unknown."""
    group: str
    subscription: str


_KINDS = {
    "microsoft.containerinstance/containergroups": "Container group",
    "microsoft.containerregistry/registries": "Registry",
    "microsoft.managedidentity/userassignedidentities": "Managed identity",
}


def resource_name(resource_id: str) -> ResourceName:
    """The name, kind, resource group and subscription of an ARM id (best effort, never raises)."""
    match = _RESOURCE_ID.fullmatch(resource_id.rstrip("/"))
    if not match:
        return ResourceName(resource_id.rstrip("/").rsplit("/", 1)[-1] or resource_id, "Resource", "", "")
    parts = match["rest"].split("/")
    types = "/".join([match["ns"], *parts[0::2]]).lower()
    return ResourceName(parts[-1], _KINDS.get(types, types), match["rg"], match["sub"])


def portal_url(resource_id: str, tenant: str | None = None) -> str | None:
    """``https://portal.azure.com/#@<tenant>/resource<id>``, or None when the id is not a plain ARM id."""
    if len(resource_id) > MAX_ID or not _SAFE_ID.fullmatch(resource_id.rstrip("/")):
        return None
    path = quote(resource_id.rstrip("/"), safe="/()~@,;:=+-._")
    if tenant and _TENANT.fullmatch(tenant):
        return f"{PORTAL}/#@{tenant}/resource{path}"
    return f"{PORTAL}/#resource{path}"


def report_portal_url(report: Mapping[str, Any]) -> str | None:
    tenant = report.get("tenantId")
    return portal_url(str(report.get("resourceId") or ""), tenant if isinstance(tenant, str) else None)


def duration_text(seconds: Any) -> str | None:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        return None
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def redeploy_text(report: Mapping[str, Any]) -> str:
    """``succeeded after 2 attempts: running``, ``skipped``, ``failed after 3 attempts: CODE: message``."""
    redeploy = report.get("redeploy")
    if not isinstance(redeploy, Mapping):
        return "unknown"
    status = str(redeploy.get("status", "unknown"))
    attempts = redeploy.get("attempts")
    text = f"{REDEPLOY_STATUS_EMOJI.get(status, '')} {status}".strip()
    if isinstance(attempts, int) and attempts > 0:
        text += f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    error = redeploy.get("error")
    if isinstance(error, Mapping) and error.get("code"):
        text += f": {error.get('code')}: {error.get('message', '')}".rstrip(": ")
    elif redeploy.get("detail"):
        text += f": {redeploy['detail']}"
    return text


def must_act(report: Mapping[str, Any]) -> bool:
    """Whether the report carries something a person has to do (commands or a corrected definition)."""
    return bool(report.get("commands")) or isinstance(report.get("proposedDefinition"), Mapping)


def evidence_items(evidence: Any, *, value_chars: int = 300) -> list[tuple[str, str]]:
    """A cause's evidence as (key, text) pairs, documents left out (see :func:`document_links`)."""
    if not isinstance(evidence, Mapping):
        return []
    items: list[tuple[str, str]] = []
    for key, value in evidence.items():
        if key == "documents":
            continue
        items.append((str(key), clip(_value_text(value), value_chars)))
    return items


def _value_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if not value:
            return "none"
        if all(isinstance(v, (str, int, float)) for v in value):
            return ", ".join(str(v) for v in value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def document_links(evidence: Any) -> list[tuple[str, str]]:
    """(title, url) of the documents a cause cites, only for Microsoft Learn / aka.ms links."""
    docs = evidence.get("documents") if isinstance(evidence, Mapping) else None
    links: list[tuple[str, str]] = []
    for doc in docs if isinstance(docs, list) else []:
        if not isinstance(doc, Mapping):
            continue
        url, title = doc.get("url"), doc.get("title")
        if isinstance(url, str) and url.startswith(DOC_PREFIXES) and re.fullmatch(r"[^\s<>()\[\]|\"']+", url):
            links.append((str(title or url), url))
    return links


def headline(report: Mapping[str, Any]) -> str:
    """One line: ``✅ Remediated: acrtestcontainergroup (InaccessibleImage): 1 cause, 2 changes``."""
    s = style(report)
    name = resource_name(str(report.get("resourceId") or "")).name
    causes = report.get("causes") if isinstance(report.get("causes"), list) else []
    actions = report.get("actions") if isinstance(report.get("actions"), list) else []
    code = f" ({report['errorCode']})" if report.get("errorCode") else ""
    counts = f"{_count(len(causes or []), 'cause')}, {_count(len(actions or []), 'change')}"
    return f"{s.emoji} {s.label}: {name}{code}: {counts}"


def storm_line(report: Mapping[str, Any], runs: int) -> str:
    """The grouped one-line summary sent instead of per-resource cards while runs storm in."""
    return (
        f"⚠️ {runs} remediation runs in the current window; per-resource cards are paused until it calms "
        f"down. Latest: {headline(report)}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def compact(report: Mapping[str, Any]) -> dict[str, Any]:
    """A small summary of the report for machine channels (Event Grid ``data``)."""
    causes = report.get("causes") if isinstance(report.get("causes"), list) else []
    actions = report.get("actions") if isinstance(report.get("actions"), list) else []
    redeploy = report.get("redeploy") if isinstance(report.get("redeploy"), Mapping) else {}
    summary: dict[str, Any] = {
        "schemaVersion": report.get("schemaVersion"),
        "resourceId": report.get("resourceId"),
        "correlationId": report.get("correlationId"),
        "eventId": report.get("eventId"),
        "trigger": report.get("trigger"),
        "errorCode": report.get("errorCode"),
        "outcome": report.get("outcome"),
        "dryRun": report.get("dryRun"),
        "causes": [c.get("code") for c in causes or [] if isinstance(c, Mapping)],
        "actions": [
            {"kind": a.get("kind"), "target": a.get("target"), "status": a.get("status")}
            for a in actions or []
            if isinstance(a, Mapping)
        ],
        "redeploy": {"status": (redeploy or {}).get("status"), "attempts": (redeploy or {}).get("attempts")},
        "durationSeconds": report.get("durationSeconds"),
        "finishedAt": report.get("finishedAt"),
        "skipReason": report.get("skipReason"),
        "error": report.get("error"),
        "needsAction": must_act(report),
    }
    return {k: v for k, v in summary.items() if v is not None}


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    longest_note = len(f"… ({len(text)} more characters)")
    if limit < longest_note + 10:
        return text[: max(limit - 1, 0)] + "…"
    keep = limit - longest_note
    return f"{text[:keep]}… ({len(text) - keep} more characters)"


def encode_json(payload: Any) -> bytes:
    """The exact bytes posted (and measured against size limits): compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
