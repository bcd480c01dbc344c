"""The Activity Log (``azure-mgmt-monitor``: ``activity_logs.list(filter=..., select=...)``, api 2015-04-01).

Records are what :mod:`sandbox.arm` logged for writes, as visible after the scenario's
``activityLogLagSeconds``. ``$filter`` follows ARM's restricted grammar: ``and``-joined
``field op 'value'`` clauses, one of which must be ``eventTimestamp ge '<iso>'``. Results are
newest first and paged with ``nextLink`` every ``activityLogPageSize`` records (default 200).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ..server import ArmError, Request, Response, route
from ..world import parse_iso

_PATH = "/subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values"
READ_ACTION = "Microsoft.Insights/eventtypes/values/read"

# One clause: name, operator, single-quoted value ('' is an escaped quote), then "and" or the end.
_CLAUSE = re.compile(r"\s*([A-Za-z]+)\s+(eq|ge|le)\s+'((?:[^']|'')*)'\s*(and\b|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Clause:
    field: str  # lower-cased field name
    op: str  # eq | ge | le
    value: str


def _loc_value(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if isinstance(value, dict):
        return str(value.get("value") or "")
    return str(value or "")


# Field (lower case) → how to read it from a record, for "eq" clauses; comparisons ignore case.
_EQ_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "correlationid": lambda r: str(r.get("correlationId") or ""),
    "resourceuri": lambda r: str(r.get("resourceId") or ""),
    "resourceid": lambda r: str(r.get("resourceId") or ""),
    "resourcegroupname": lambda r: str(r.get("resourceGroupName") or ""),
    "resourceprovider": lambda r: _loc_value(r, "resourceProviderName"),
    "status": lambda r: _loc_value(r, "status"),
}


def _bad_filter(detail: str) -> ArmError:
    return ArmError(400, "BadRequest", f"$filter searching parameters invalid: {detail}")


def parse_filter(text: str | None) -> list[Clause]:
    """The clauses of an Activity Log ``$filter``; raises ARM's 400 for anything ARM would refuse."""
    if not text or not text.strip():
        raise _bad_filter("the $filter query parameter is required and must include a start time, "
                          "e.g. \"eventTimestamp ge '2024-01-01T00:00:00Z'\".")
    clauses: list[Clause] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _CLAUSE.match(text, pos)
        if not m or m.end() == pos:
            raise _bad_filter(f"cannot parse '{text[pos:]}'. Each clause must be \"<field> eq|ge|le '<value>'\" "
                              "with the value in single quotes, clauses joined by 'and'.")
        name, op, value = m.group(1).lower(), m.group(2).lower(), m.group(3).replace("''", "'")
        if name == "eventtimestamp":
            if op == "eq":
                raise _bad_filter("eventTimestamp supports only 'ge' and 'le'.")
            try:
                parse_iso(value)
            except ValueError:
                raise _bad_filter(f"'{value}' is not a valid eventTimestamp.") from None
        elif name in _EQ_FIELDS or name in ("levels", "eventchannels"):
            if op != "eq":
                raise _bad_filter(f"'{m.group(1)}' supports only 'eq'.")
        else:
            raise _bad_filter(f"the field '{m.group(1)}' is not supported; use eventTimestamp, correlationId, "
                              "resourceUri, resourceId, resourceGroupName, resourceProvider, status or levels.")
        clauses.append(Clause(name, op, value))
        pos = m.end()
        if m.group(4) and pos >= len(text):
            raise _bad_filter("the filter ends with 'and'.")
    if not any(c.field == "eventtimestamp" and c.op == "ge" for c in clauses):
        raise _bad_filter("a start time is required: include \"eventTimestamp ge '<ISO 8601 time>'\".")
    return clauses


def matches(record: dict[str, Any], clauses: list[Clause]) -> bool:
    """Whether an Activity Log record passes every clause."""
    for c in clauses:
        if c.field == "eventtimestamp":
            stamp = parse_iso(str(record.get("eventTimestamp")))
            bound = parse_iso(c.value)
            if (c.op == "ge" and stamp < bound) or (c.op == "le" and stamp > bound):
                return False
        elif c.field == "levels":
            wanted = {v.strip().lower() for v in c.value.split(",") if v.strip()}
            if str(record.get("level", "")).lower() not in wanted:
                return False
        elif c.field == "eventchannels":
            continue  # every sandbox record is an Admin/Operation record
        elif _EQ_FIELDS[c.field](record).lower() != c.value.lower():
            return False
    return True


def select_fields(record: dict[str, Any], select: str | None) -> dict[str, Any]:
    """``record`` reduced to the ``$select`` names; a nested name keeps its whole top-level object."""
    if not select or not select.strip():
        return record
    wanted = {name.strip().split(".", 1)[0].lower() for name in select.split(",") if name.strip()}
    return {k: v for k, v in record.items() if k.lower() in wanted}


@route("GET", _PATH, action=READ_ACTION, scope=lambda req: f"/subscriptions/{req.params['sub']}")
def list_activity(req: Request) -> Response:
    clauses = parse_filter(req.query.get("$filter"))
    select = req.query.get("$select")
    records = [r for r in req.world.visible_activity(req.params["sub"]) if matches(r, clauses)]
    records.sort(key=lambda r: parse_iso(str(r.get("eventTimestamp"))), reverse=True)
    size = max(1, int(req.world.knob("activityLogPageSize", 200)))
    try:
        start = int(req.query.get("$skiptoken") or 0)
    except ValueError:
        raise ArmError(400, "BadRequest", "The $skipToken query parameter is invalid.") from None
    body: dict[str, Any] = {"value": [select_fields(r, select) for r in records[start:start + size]]}
    if start + size < len(records):
        query = {"api-version": req.api_version or "2015-04-01", "$filter": req.query["$filter"]}
        if select:
            query["$select"] = select
        query["$skipToken"] = str(start + size)
        body["nextLink"] = f"{req.base_url}{req.path}?{urlencode(query)}"
    return Response(200, body)
