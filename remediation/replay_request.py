"""What ``POST /api/replay`` accepts (CONTRACT.md §5), read before anything is stored or queued.

:func:`read_replay` turns the raw body and the query parameters into a :class:`Replay` (the items
and the jobs that run them), or raises :class:`TooLarge` (the answer is 413) or
:class:`~remediation.errors.InputError` (400), each with a one-line message:

- a body over :data:`MAX_BODY_BYTES` (1 MiB), or an array of more than :data:`MAX_EVENTS` (100)
  events: 413;
- a body that is not UTF-8 JSON, or nests deeper than 64 levels
  (:func:`remediation.signal.decode_json`, which checks the depth before it decodes): 400;
- ``dryRun``, as a query parameter (its name in any case, ``dryrun`` too) or in a replay by
  resource id, is ``true`` or ``false`` in any letter case (a JSON boolean in the body too), and
  both say the same where both are given; anything else (``on``, ``1``, ``True `` with a space) is
  400, as is a ``dryRun`` inside an event, since it would not be read there;
- a replay by resource id holds only ``resourceId``, ``dryRun`` and ``definition``, and a
  definition the app cannot read is 400, not a ``failed`` run;
- every event must be readable (``remediation.signal``) before any of them runs or is queued.

Each job is kept as the queue would keep it: events scrubbed of secrets
(:func:`remediation.signal.scrub_event`), a definition redacted
(:func:`remediation.definition.redact`), so a run reads the same job inline or from the queue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remediation.definition import parse_replayed, redact
from remediation.errors import InputError
from remediation.model import FailureSignal, Skip
from remediation.signal import decode_json, parse_events, scrub_event, signal_for_resource

MAX_BODY_BYTES = 1024 * 1024
MAX_EVENTS = 100
RESOURCE_FIELDS = ("resourceId", "dryRun", "definition")


class TooLarge(InputError):
    """A replay over the limits of CONTRACT.md §5 (answered 413)."""


@dataclass(frozen=True)
class Replay:
    """A replay's body, read: what it asks to run, and how."""

    items: tuple[FailureSignal | Skip, ...]
    """One per event (or the one resource), in the body's order."""
    jobs: tuple[dict[str, Any], ...]
    """The job of each item, ready to run or queue (``kind``, ``dryRun``, ``trigger``, ...)."""
    many: bool
    """The body was an array, so the answer is one too."""
    dry_run: bool


def read_replay(raw_body: bytes, query: Mapping[str, str]) -> Replay:
    """Read a replay's raw body and query parameters; see the module docstring for the rules."""
    if len(raw_body) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is {len(raw_body)} bytes; a replay takes at most {MAX_BODY_BYTES} bytes (1 MiB)")
    body = _decode(raw_body)
    if isinstance(body, list) and len(body) > MAX_EVENTS:
        raise TooLarge(f"the body holds {len(body)} events; a replay takes at most {MAX_EVENTS}, "
                       "so post the rest separately")
    asked = _query_dry_run(query)
    if isinstance(body, dict) and "resourceId" in body and not {"eventType", "type", "specversion"} & set(body):
        return _by_resource(body, asked)
    return _by_events(body, asked)


def _decode(raw_body: bytes) -> Any:
    if not raw_body.strip():
        raise InputError('the body is empty; expected an event, an array of events or {"resourceId": "…"}')
    return decode_json(raw_body)


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.lower() in ("true", "false"):
        return value.lower() == "true"
    shown = json.dumps(value)[:40] if isinstance(value, (str, int, float)) or value is None else type(value).__name__
    raise InputError(f"{where} must be true or false, not {shown}")


def _query_dry_run(query: Mapping[str, str]) -> bool | None:
    """The ``dryRun`` query parameter (its name in any case), or None when it is not given."""
    asked = {_flag(value, f"the {name[:40]} query parameter")
             for name, value in query.items() if name.lower() == "dryrun"}
    if len(asked) > 1:
        raise InputError("the dryRun query parameter is given twice, with different values")
    return asked.pop() if asked else None


def _by_resource(body: dict[str, Any], asked: bool | None) -> Replay:
    unknown = [key for key in body if key not in RESOURCE_FIELDS]
    if unknown:
        raise InputError(f"a replay by resource id holds only {', '.join(RESOURCE_FIELDS)}, not {unknown[0][:40]!r}")
    if "dryRun" in body:
        in_body = _flag(body["dryRun"], "dryRun")
        if asked is not None and asked != in_body:
            raise InputError("the dryRun query parameter and the body's dryRun disagree")
        asked = in_body
    definition = body.get("definition")
    if definition is not None and not isinstance(definition, dict):
        raise InputError("definition must be a container group JSON object")
    signal = signal_for_resource(body["resourceId"], definition=definition)
    if definition:
        parse_replayed(signal.resource_id, definition)
    dry_run = bool(asked)
    # a queued job (and a poison message) never holds a secret the caller sent
    job = {"kind": "resource", "resourceId": signal.resource_id,
           "definition": redact(definition) if definition else None, "dryRun": dry_run, "trigger": "replay"}
    return Replay((signal,), (job,), many=False, dry_run=dry_run)


def _by_events(body: Any, asked: bool | None) -> Replay:
    if not isinstance(body, (dict, list)):
        raise InputError('the body is neither an event, an array of events nor {"resourceId": "…"}')
    many = isinstance(body, list)
    events = body if many else [body]
    for i, event in enumerate(events):
        where = f"event[{i}]" if many else "event"
        data = event.get("data") if isinstance(event, dict) else None
        for place, holder in ((where, event), (f"{where}.data", data)):
            inside = next((k for k in holder if k.lower() == "dryrun"), None) if isinstance(holder, dict) else None
            if inside is not None:
                raise InputError(f"{place}.{inside[:40]}: a dry run is asked for with ?dryRun=true, "
                                 "never from inside an event")
    items = parse_events(body)  # every event must be readable before anything runs or is queued
    dry_run = bool(asked)
    jobs = tuple({"kind": "event", "event": scrub_event(event), "dryRun": dry_run, "trigger": "replay"}
                 for event in events)
    return Replay(tuple(items), jobs, many=many, dry_run=dry_run)
