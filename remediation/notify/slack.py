"""The Slack message for a report: ``text`` (notification fallback) plus Block Kit ``blocks``.

``message(report)`` returns a payload for a Slack incoming webhook: a header, a section with the
resource (linked to the Azure portal) and fields for outcome, error code, redeploy, duration and ids,
one section per cause with its key evidence, the changes made, and, when a person must act, the
commands and the corrected definition in code blocks; then a portal button and a context line.

Escaping (:func:`escape`): ``&``, ``<`` and ``>`` become entities, so report text can never form a
link or a mention such as ``<!channel>``; a ``*``, ``_``, ``~`` or backtick that could open bold,
italic, strike or code is replaced by its full-width twin (Slack mrkdwn has no escape character),
while one inside a word, as in ``my_resource_group``, is kept. Text objects are ``verbatim`` so Slack
does not auto-link names or URLs, and link unfurling is off.

Slack's limits are enforced, trimming rather than failing: ≤ 50 blocks, section text ≤ 3000
characters, ≤ 10 fields of ≤ 2000 characters, header ≤ 150, ``text`` ≤ 40 000.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from remediation.notify.summary import (
    ACTION_STATUS_EMOJI,
    clip,
    document_links,
    duration_text,
    evidence_items,
    headline,
    must_act,
    redeploy_text,
    report_portal_url,
    resource_name,
    style,
)

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_HEADER = 150
MAX_TEXT = 40_000
MAX_BUTTON = 75
MAX_CAUSE_SECTIONS = 15
MAX_DEFINITION_SECTIONS = 4

_OPENER = re.compile(r"(?<![0-9A-Za-z])[*_~`]")
_FULLWIDTH = {"*": "＊", "_": "＿", "~": "～", "`": "｀"}


def escape(text: Any) -> str:
    """``text`` shown literally in mrkdwn (see the module docstring)."""
    t = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _OPENER.sub(lambda m: _FULLWIDTH[m[0]], t)


def escape_plain(text: Any) -> str:
    """``text`` for a ``plain_text`` object: only the entities (formatting is not parsed there)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_code(text: Any) -> str:
    """``text`` for inside a ```` ``` ```` block: entities for ``&<>``, and no ```` ``` ```` to end it early."""
    return escape_plain(text).replace("```", "ˋˋˋ")


def fit(text: str, limit: int, esc: Callable[[Any], str] = escape) -> str:
    """``esc(text)`` in at most ``limit`` characters, cut on the raw text so no entity is split."""
    budget = limit
    while True:
        out = esc(clip(text, budget))
        if len(out) <= limit:
            return out
        if budget <= 1:
            return out[:limit]
        budget = max(budget - (len(out) - limit), 1)


def message(report: Mapping[str, Any]) -> dict[str, Any]:
    """The incoming-webhook payload for ``report``, within Slack's limits."""
    tail = [*_buttons(report), _context(report)]
    head = [_header(report), _overview(report), *_situation(report)]
    todo = _todo(report)
    changes = _changes(report)
    room = MAX_BLOCKS - len(head) - len(tail) - len(todo) - len(changes) - 2
    blocks = [*head, *_causes(report, room), *changes, *todo, *tail]
    return {
        "text": fit(headline(report), min(MAX_TEXT, MAX_SECTION)),
        "blocks": blocks[:MAX_BLOCKS],
        "unfurl_links": False,
        "unfurl_media": False,
    }


def storm_message(line: str) -> dict[str, Any]:
    """The grouped one-line summary sent during a storm."""
    return {"text": fit(line, MAX_SECTION), "unfurl_links": False, "unfurl_media": False}


# --- blocks ------------------------------------------------------------------------------------


def _header(report: Mapping[str, Any]) -> dict[str, Any]:
    s = style(report)
    name = resource_name(str(report.get("resourceId") or "")).name
    text = fit(f"{s.emoji} {s.label}: {name}", MAX_HEADER, escape_plain)
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _overview(report: Mapping[str, Any]) -> dict[str, Any]:
    s = style(report)
    res = resource_name(str(report.get("resourceId") or ""))
    portal = report_portal_url(report)
    label = fit(res.name, 500).replace("|", "¦")
    name = f"<{portal}|{label}>" if portal else label
    where = f" in resource group {fit(res.group, 300)}, subscription {fit(res.subscription, 100)}" if res.group else ""
    text = f"*{name}* · {escape(res.kind)}{where}\n{escape(s.headline)}"
    fields = [
        ("Outcome", f"{s.emoji} {report.get('outcome')}" + (" (dry run)" if report.get("dryRun") else "")),
        ("Error code", str(report.get("errorCode") or "none")),
        ("Redeploy", redeploy_text(report)),
        ("Duration", duration_text(report.get("durationSeconds")) or "unknown"),
        ("Trigger", str(report.get("trigger"))),
        ("Correlation id", str(report.get("correlationId") or "none")),
    ]
    if report.get("eventId"):
        fields.append(("Event id", str(report["eventId"])))
    return {
        "type": "section",
        "text": _mrkdwn(text[:MAX_SECTION]),
        "fields": [_mrkdwn(f"*{label}*\n{fit(value, MAX_FIELD - len(label) - 3)}") for label, value in fields][
            :MAX_FIELDS
        ],
    }


def _situation(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    lines: list[str] = []
    if report.get("errorMessage"):
        lines.append(f"*{escape(report.get('errorCode') or 'Error')}*: {fit(str(report['errorMessage']), 1200)}")
    if report.get("skipReason"):
        lines.append(f"*Skipped:* {fit(str(report['skipReason']), 600)}")
    if report.get("error"):
        lines.append(f":x: *Why it failed:* {fit(str(report['error']), 600)}")
    warnings = report.get("warnings")
    if isinstance(warnings, list) and warnings:
        lines.append(f":warning: *Warnings:* {fit('; '.join(map(str, warnings)), 600)}")
    notes = report.get("notes")
    if isinstance(notes, list) and notes:
        lines.append(f"*Notes:* {fit('; '.join(map(str, notes)), 500)}")
    return [_section("\n".join(lines))] if lines else []


def _causes(report: Mapping[str, Any], room: int) -> list[dict[str, Any]]:
    causes = _list(report, "causes")
    if not causes:
        return []
    shown = causes[: max(min(room - 1, MAX_CAUSE_SECTIONS), 1)]
    blocks: list[dict[str, Any]] = [{"type": "divider"}]
    for i, cause in enumerate(shown):
        title = f"*Causes ({len(causes)})*\n" if i == 0 else ""
        blocks.append(_section(_cause_text(cause, title)))
    if len(causes) > len(shown):
        blocks.append(_context_line(f"… {len(causes) - len(shown)} more causes (see the full report)"))
    return blocks


def _cause_text(cause: Mapping[str, Any], title: str) -> str:
    fixable = " (fixable)" if cause.get("fixable") else ""
    first = f"{title}*{fit(str(cause.get('code')), 100)}*{fixable}: {fit(str(cause.get('summary', '')), 1200)}"
    docs = [f"<{url}|{fit(name, 80).replace('|', '¦')}>" for name, url in document_links(cause.get("evidence"))[:3]]
    last = [f"_Listed in:_ {', '.join(docs)}"] if docs else []
    evidence = [f"• {fit(k, 60)}: {fit(v, 200)}" for k, v in evidence_items(cause.get("evidence"), value_chars=400)]
    return _lines_within([first], evidence, last, "evidence items")


def _changes(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    actions = _list(report, "actions")
    if not actions:
        return []
    lines = []
    for action in actions:
        status = str(action.get("status"))
        target = resource_name(str(action.get("target") or ""))
        line = (
            f"{ACTION_STATUS_EMOJI.get(status, '•')} *{fit(str(action.get('kind')), 60)}* on "
            f"{escape(target.kind.lower())} {fit(target.name, 200)}: {fit(status, 30)}"
        )
        if action.get("detail"):
            line += f"\n      {fit(str(action['detail']), 600)}"
        lines.append(line)
    return [{"type": "divider"}, _section(_lines_within([f"*Changes ({len(actions)})*"], lines, [], "changes"))]


def _todo(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not must_act(report):
        return []
    blocks: list[dict[str, Any]] = []
    commands = [str(c) for c in report.get("commands") or [] if isinstance(c, str)]
    if commands:
        head = "*What you need to do*\nRun with the Azure CLI:"
        room = MAX_SECTION - len(head) - 20
        kept: list[str] = []
        for command in commands:
            text = fit(command, 1500, escape_code)
            if sum(len(k) + 1 for k in kept) + len(text) > room:
                break
            kept.append(text)
        left = len(commands) - len(kept)
        more = f"\n… {left} more commands (see the full report)" if left else ""
        blocks.append(_section(f"{head}\n```{chr(10).join(kept)}```{more}"))
    definition = report.get("proposedDefinition")
    if isinstance(definition, Mapping):
        blocks += _definition(json.dumps(definition, indent=1, ensure_ascii=False), not commands)
    return blocks


def _definition(text: str, first: bool) -> list[dict[str, Any]]:
    head = ("*What you need to do*\n" if first else "") + "*Corrected definition* (secrets redacted):"
    chunk = MAX_SECTION - len(head) - 80
    pieces: list[str] = []
    rest = text
    while rest and len(pieces) < MAX_DEFINITION_SECTIONS:
        piece = rest[:chunk]
        while len(escape_code(piece)) > chunk:
            piece = piece[: len(piece) - (len(escape_code(piece)) - chunk)]
        pieces.append(escape_code(piece))
        rest = rest[len(piece) :]
    blocks = []
    for i, piece in enumerate(pieces):
        label = head if i == 0 else "*Corrected definition* (continued):"
        last = i == len(pieces) - 1
        more = f"\n… {len(rest)} more characters; the full definition is in the report" if rest and last else ""
        blocks.append(_section(f"{label}\n```{piece}```{more}"))
    return blocks


def _buttons(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    elements = []
    portal = report_portal_url(report)
    if portal and len(portal) <= 3000:
        elements.append(_button("Open in Azure portal", portal, "portal"))
    for cause in _list(report, "causes")[:1]:
        for title, url in document_links(cause.get("evidence"))[:1]:
            elements.append(_button(title.capitalize(), url, "docs"))
    return [{"type": "actions", "elements": elements}] if elements else []


def _context(report: Mapping[str, Any]) -> dict[str, Any]:
    parts = [f"Correlation id {report.get('correlationId') or 'none'}"]
    if report.get("eventId"):
        parts.append(f"event {report['eventId']}")
    parts.append(f"trigger {report.get('trigger')}")
    parts.append(f"report schema v{report.get('schemaVersion')}")
    return _context_line(" · ".join(parts))


# --- elements ----------------------------------------------------------------------------------


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text[:MAX_SECTION])}


def _context_line(raw: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(fit(raw, MAX_SECTION))]}


def _button(text: str, url: str, action_id: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": fit(text, MAX_BUTTON, escape_plain), "emoji": True},
        "url": url,
        "action_id": action_id,
    }


def _lines_within(first: list[str], middle: list[str], last: list[str], noun: str) -> str:
    """``first + middle + last`` joined by newlines, dropping middle lines until it fits a section."""
    kept = list(middle)
    while True:
        more = [f"… {len(middle) - len(kept)} more {noun}"] if len(kept) < len(middle) else []
        text = "\n".join([*first, *kept, *more, *last])
        if len(text) <= MAX_SECTION or not kept:
            return text[:MAX_SECTION] if len(text) > MAX_SECTION else text
        kept.pop()


def _list(report: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = report.get(key)
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
