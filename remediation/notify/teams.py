"""The Microsoft Teams message for a report: an Adaptive Card in the Workflows webhook envelope.

``card(report)`` returns ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <AdaptiveCard 1.4>}]}``,
the payload a Teams Workflows "When a Teams webhook request is received" flow (and a legacy incoming
webhook) accepts. Only elements of card version ≤ 1.4 and ``Action.OpenUrl`` / ``Action.ShowCard``
are used; never ``Action.Submit``, which webhooks do not support.

Text from the report goes into ``TextBlock`` / ``FactSet`` markdown escaped with
:func:`escape_markdown`; commands and the corrected definition go into monospace ``TextRun`` s,
which Adaptive Cards never parse as markdown, so they copy exactly. A card whose JSON would exceed
28 KB (Teams' limit per message) is rebuilt with fewer causes, evidence and a shorter definition,
saying how much was left out, down to a minimal card that always fits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remediation.notify.summary import (
    ACTION_STATUS_EMOJI,
    clip,
    document_links,
    duration_text,
    encode_json,
    evidence_items,
    must_act,
    redeploy_text,
    report_portal_url,
    resource_name,
    style,
)

MAX_BYTES = 28_000
"""Teams rejects a message above about 28 KB; measured on :func:`summary.encode_json`."""
CARD_VERSION = "1.4"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"

# Every character CommonMark could read as formatting, a link, an autolink or an HTML tag, and
# the braces of Adaptive Cards' {{DATE()}} / {{TIME()}} text functions.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#~|!@])")
_LINE_START = re.compile(r"^(\s*)([-+=]|\d{1,9}[.)])(?=\s|$)")


def escape_markdown(text: Any) -> str:
    """``text`` shown literally in a TextBlock: formatting characters backslash-escaped, line
    breaks folded, and ``scheme://`` broken so the renderer's autolinker does not make a link."""
    flat = " ".join(str(text).split())
    escaped = _MD_SPECIAL.sub(r"\\\1", flat).replace("://", "\\://")
    # A line that starts like a list item ("- x", "1. x") is a list in markdown.
    return _LINE_START.sub(lambda m: f"{m[1]}{m[2][:-1]}\\{m[2][-1]}", escaped)


@dataclass(frozen=True)
class _Limits:
    causes: int
    evidence: int
    value: int
    text: int
    actions: int
    detail: int
    commands: int
    command_chars: int
    definition: int
    """Characters of the indented corrected definition; 0 leaves it out of the card."""


_LEVELS = (
    _Limits(15, 10, 400, 2000, 15, 800, 10, 1500, 15000),
    _Limits(8, 6, 200, 1000, 10, 400, 6, 1000, 8000),
    _Limits(4, 4, 120, 500, 6, 200, 4, 800, 3000),
    _Limits(2, 2, 80, 300, 4, 150, 2, 600, 0),
)


def card(report: Mapping[str, Any], *, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """The Workflows envelope with the report's card, trimmed until it fits in ``max_bytes``."""
    for limits in _LEVELS:
        message = envelope(_card(report, limits))
        if len(encode_json(message)) <= max_bytes:
            return message
    return envelope(_minimal(report))


def storm_card(line: str) -> dict[str, Any]:
    """The envelope of a one-line card (the grouped summary sent during a storm)."""
    return envelope(_adaptive([_text(escape_markdown(line), weight="Bolder")], []))


def envelope(content: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": content}],
    }


def _adaptive(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    content: dict[str, Any] = {"$schema": SCHEMA, "type": "AdaptiveCard", "version": CARD_VERSION, "body": body}
    if actions:
        content["actions"] = actions
    content["msteams"] = {"width": "Full"}
    return content


# --- the card ----------------------------------------------------------------------------------


def _card(report: Mapping[str, Any], lim: _Limits) -> dict[str, Any]:
    body = [*_header(report, lim), _facts(_overview(report, lim))]
    body += _situation(report, lim)
    body += _causes(report, lim)
    body += _changes(report, lim)
    body += _todo(report, lim)
    return _adaptive(body, _actions(report, lim))


def _minimal(report: Mapping[str, Any]) -> dict[str, Any]:
    lim = _Limits(0, 0, 80, 200, 0, 0, 0, 0, 0)
    causes = _list(report, "causes")
    codes = [str(c.get("code")) for c in causes[:10]]
    more = f" … {len(causes) - 10} more" if len(causes) > 10 else ""
    body = [*_header(report, lim), _facts(_overview(report, lim))]
    body.append(_text(escape_markdown(clip(f"{len(causes)} causes: {', '.join(codes)}{more}", 1500))))
    body.append(_text(f"{len(_list(report, 'actions'))} changes; the full report has every detail.", isSubtle=True))
    return _adaptive(body, _actions(report, lim))


def _header(report: Mapping[str, Any], lim: _Limits) -> list[dict[str, Any]]:
    s = style(report)
    res = resource_name(str(report.get("resourceId") or ""))
    where = f"{res.kind} in resource group {res.group}, subscription {res.subscription}" if res.group else res.kind
    items = [
        _text(f"{s.emoji} {s.label}: {escape_markdown(clip(res.name, lim.text))}", size="Large", weight="Bolder"),
        _text(escape_markdown(clip(where, lim.text)), isSubtle=True, spacing="None"),
    ]
    if s.headline:
        items.append(_text(escape_markdown(s.headline), spacing="Small"))
    return [{"type": "Container", "style": s.teams_style, "bleed": True, "items": items}]


def _overview(report: Mapping[str, Any], lim: _Limits) -> list[tuple[str, str]]:
    s = style(report)
    facts = [
        ("Outcome", f"{s.emoji} {report.get('outcome')}" + (" (dry run)" if report.get("dryRun") else "")),
        ("Error code", str(report.get("errorCode") or "none")),
        ("Redeploy", redeploy_text(report)),
    ]
    duration = duration_text(report.get("durationSeconds"))
    if duration:
        facts.append(("Duration", duration))
    facts.append(("Trigger", str(report.get("trigger"))))
    facts.append(("Correlation id", str(report.get("correlationId") or "none")))
    if report.get("eventId"):
        facts.append(("Event id", str(report["eventId"])))
    facts.append(("Resource id", str(report.get("resourceId"))))
    return [(title, clip(value, lim.text)) for title, value in facts]


def _situation(report: Mapping[str, Any], lim: _Limits) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if report.get("errorMessage"):
        code = escape_markdown(report.get("errorCode") or "Error")
        blocks.append(_text(f"**{code}**: {escape_markdown(clip(str(report['errorMessage']), lim.text))}"))
    if report.get("skipReason"):
        blocks.append(_text(f"**Skipped:** {escape_markdown(clip(str(report['skipReason']), lim.text))}"))
    if report.get("error"):
        blocks.append(
            _text(f"**Why it failed:** {escape_markdown(clip(str(report['error']), lim.text))}", color="Attention")
        )
    warnings = report.get("warnings")
    if isinstance(warnings, list) and warnings:
        text = escape_markdown(clip("; ".join(map(str, warnings)), lim.text))
        blocks.append(_text(f"**Warnings:** {text}", color="Warning"))
    notes = report.get("notes")
    if isinstance(notes, list) and notes:
        blocks.append(_text(f"**Notes:** {escape_markdown(clip('; '.join(map(str, notes)), lim.text))}", isSubtle=True))
    return blocks


def _causes(report: Mapping[str, Any], lim: _Limits) -> list[dict[str, Any]]:
    causes = _list(report, "causes")
    if not causes:
        return []
    blocks = [_heading(f"Causes ({len(causes)})")]
    for cause in causes[: lim.causes]:
        fixable = " (fixable)" if cause.get("fixable") else ""
        summary = escape_markdown(clip(str(cause.get("summary", "")), lim.text))
        items = [_text(f"**{escape_markdown(cause.get('code'))}**{fixable}: {summary}")]
        evidence = evidence_items(cause.get("evidence"), value_chars=lim.value)
        shown = evidence[: lim.evidence]
        if shown:
            items.append(_facts([(escape_markdown(k), v) for k, v in shown], escape_values=True, small=True))
        if len(evidence) > len(shown):
            items.append(_text(f"… {len(evidence) - len(shown)} more evidence items", isSubtle=True, spacing="None"))
        docs = [f"[{escape_markdown(title)}]({url})" for title, url in document_links(cause.get("evidence"))]
        if docs:
            items.append(_text("Listed in: " + ", ".join(docs), isSubtle=True, size="Small", spacing="Small"))
        blocks.append({"type": "Container", "spacing": "Medium", "items": items})
    if len(causes) > lim.causes:
        blocks.append(_text(f"… {len(causes) - lim.causes} more causes (see the full report)", isSubtle=True))
    return blocks


def _changes(report: Mapping[str, Any], lim: _Limits) -> list[dict[str, Any]]:
    actions = _list(report, "actions")
    if not actions:
        return []
    blocks = [_heading(f"Changes ({len(actions)})")]
    for action in actions[: lim.actions]:
        status = str(action.get("status"))
        target = resource_name(str(action.get("target") or ""))
        line = (
            f"{ACTION_STATUS_EMOJI.get(status, '•')} **{escape_markdown(action.get('kind'))}** on "
            f"{escape_markdown(target.kind.lower())} {escape_markdown(clip(target.name, lim.value))}: "
            f"{escape_markdown(status)}"
        )
        blocks.append(_text(line, spacing="Small"))
        if action.get("detail"):
            blocks.append(
                _text(escape_markdown(clip(str(action["detail"]), lim.detail)), isSubtle=True, spacing="None")
            )
    if len(actions) > lim.actions:
        blocks.append(_text(f"… {len(actions) - lim.actions} more changes (see the full report)", isSubtle=True))
    return blocks


def _todo(report: Mapping[str, Any], lim: _Limits) -> list[dict[str, Any]]:
    if not must_act(report):
        return []
    blocks = [_heading("What you need to do")]
    commands = [str(c) for c in _plain_list(report.get("commands"))]
    if commands:
        blocks.append(_text("Run with the Azure CLI:", spacing="Small"))
        blocks += [_mono(clip(c, lim.command_chars)) for c in commands[: lim.commands]]
        if len(commands) > lim.commands:
            blocks.append(_text(f"… {len(commands) - lim.commands} more commands (see the full report)", isSubtle=True))
    if isinstance(report.get("proposedDefinition"), Mapping):
        if lim.definition:
            blocks.append(_text("The corrected container group definition is under **Corrected definition**."))
        else:
            blocks.append(_text("The corrected definition is too large for a card; it is in the full report."))
    return blocks


def _actions(report: Mapping[str, Any], lim: _Limits) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    portal = report_portal_url(report)
    if portal:
        actions.append({"type": "Action.OpenUrl", "title": "Open in Azure portal", "url": portal})
    for cause in _list(report, "causes")[:1]:
        for title, url in document_links(cause.get("evidence"))[:1]:
            actions.append({"type": "Action.OpenUrl", "title": clip(title.capitalize(), 40), "url": url})
    definition = report.get("proposedDefinition")
    if isinstance(definition, Mapping) and lim.definition:
        text = clip(json.dumps(definition, indent=2, ensure_ascii=False), lim.definition)
        actions.append(
            {
                "type": "Action.ShowCard",
                "title": "Corrected definition",
                "card": {"type": "AdaptiveCard", "body": [_mono(text)]},
            }
        )
    return actions


# --- elements ----------------------------------------------------------------------------------


def _text(text: str, **props: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **props}


def _heading(text: str) -> dict[str, Any]:
    return _text(text, size="Medium", weight="Bolder", separator=True, spacing="Medium")


def _mono(text: str) -> dict[str, Any]:
    # A TextRun is never parsed as markdown, so commands and JSON need no escaping and copy exactly.
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": text, "fontType": "Monospace"}]}


def _facts(pairs: list[tuple[str, str]], *, escape_values: bool = True, small: bool = False) -> dict[str, Any]:
    facts = [{"title": title, "value": escape_markdown(value) if escape_values else value} for title, value in pairs]
    block: dict[str, Any] = {"type": "FactSet", "facts": facts}
    if small:
        block["spacing"] = "Small"
    return block


def _list(report: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [item for item in _plain_list(report.get(key)) if isinstance(item, Mapping)]


def _plain_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
