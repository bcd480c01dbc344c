"""The Activity Log (``azure-mgmt-monitor``: ``activity_logs.list(filter=..., select=...)``, api 2015-04-01).

Records are what :mod:`sandbox.arm` logged for writes, as visible after the scenario's
``activityLogLagSeconds``, with their display (``localizedValue``) texts. ``$filter`` takes only
the patterns the spec documents (Azure/azure-rest-api-specs,
``specification/monitor/resource-manager/Microsoft.Insights/stable/2015-04-01/activityLogs_API.json``,
``$filter``: "very restricted ... No other syntax is allowed"): ``eventTimestamp ge '<start>'``
(required), optionally ``eventTimestamp le '<end>'``, and at most one of ``resourceGroupName``,
``resourceUri``, ``resourceProvider`` or ``correlationId`` ``eq '<value>'``, joined by ``and``. The
start may be at most 90 days back, the Activity Log's retention ("Activity log events are retained
in Azure for 90 days", MicrosoftDocs/azure-docs, ``articles/azure-monitor/essentials/activity-log.md``).
Errors are the spec's flat ``ErrorResponse`` (``{"code", "message"}``). Results are newest first
and paged with ``nextLink`` every ``activityLogPageSize`` records (default 200).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from ..server import ArmError, Request, Response, route
from ..world import parse_iso

_PATH = "/subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values"
READ_ACTION = "Microsoft.Insights/eventtypes/values/read"
RETENTION_DAYS = 90

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


# The documented "eq" fields (lower case) → how to read each from a record; comparisons ignore case.
_EQ_FIELDS: dict[str, Callable[[dict[str, Any]], str]] = {
    "correlationid": lambda r: str(r.get("correlationId") or ""),
    "resourceuri": lambda r: str(r.get("resourceId") or ""),
    "resourcegroupname": lambda r: str(r.get("resourceGroupName") or ""),
    "resourceprovider": lambda r: _loc_value(r, "resourceProviderName"),
}


def _bad_filter(detail: str) -> ArmError:
    return ArmError(400, "BadRequest", f"$filter searching parameters invalid: {detail}", flat=True)


def parse_filter(text: str | None, *, now: float | None = None) -> list[Clause]:
    """The clauses of an Activity Log ``$filter``; raises the 400 Azure answers for anything else.
    ``now`` (the world's clock) bounds the start time to the retention."""
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
            if any(c.field == name and c.op == op for c in clauses):
                raise _bad_filter(f"'eventTimestamp {op}' is given twice.")
        elif name in _EQ_FIELDS:
            if op != "eq":
                raise _bad_filter(f"'{m.group(1)}' supports only 'eq'.")
            if any(c.field in _EQ_FIELDS for c in clauses):
                raise _bad_filter("only one of resourceGroupName, resourceUri, resourceProvider and correlationId "
                                  "may be given.")
        else:
            raise _bad_filter(f"the field '{m.group(1)}' is not supported; use eventTimestamp with "
                              "resourceGroupName, resourceUri, resourceProvider or correlationId.")
        clauses.append(Clause(name, op, value))
        pos = m.end()
        if m.group(4) and pos >= len(text):
            raise _bad_filter("the filter ends with 'and'.")
    start = next((c for c in clauses if c.field == "eventtimestamp" and c.op == "ge"), None)
    if start is None:
        raise _bad_filter("a start time is required: include \"eventTimestamp ge '<ISO 8601 time>'\".")
    if now is not None and parse_iso(start.value) < now - RETENTION_DAYS * 86400:
        raise _bad_filter(f"the start time '{start.value}' is more than {RETENTION_DAYS} days in the past; "
                          f"the activity log keeps {RETENTION_DAYS} days.")
    return clauses


def matches(record: dict[str, Any], clauses: list[Clause]) -> bool:
    """Whether an Activity Log record passes every clause."""
    for c in clauses:
        if c.field == "eventtimestamp":
            stamp = parse_iso(str(record.get("eventTimestamp")))
            bound = parse_iso(c.value)
            if (c.op == "ge" and stamp < bound) or (c.op == "le" and stamp > bound):
                return False
        elif _EQ_FIELDS[c.field](record).lower() != c.value.lower():
            return False
    return True


# Display names of the operations the sandbox logs, as the Activity Log shows them (each provider's
# operation display text; "Create or Update Container Group" is ACI's for containerGroups/write).
# Operations not listed keep their invariant name, as Azure's own example does for microsoft.support.
_OPERATION_DISPLAY = {
    "microsoft.containerinstance/containergroups/write": "Create or Update Container Group",
    "microsoft.containerinstance/containergroups/delete": "Delete Container Group",
    "microsoft.authorization/roleassignments/write": "Create role assignment",
    "microsoft.authorization/roleassignments/delete": "Delete role assignment",
}
# EndRequest → "End request", as in the spec's example GetActivityLogsFiltered.json.
_EVENT_DISPLAY = {"beginrequest": "Begin request", "endrequest": "End request"}
_STATUS_BY_NAME = {s.phrase.replace(" ", "").lower(): s for s in HTTPStatus}


def _sub_status_display(value: str) -> str:
    """``Created`` → ``Created (HTTP Status Code: 201)``, the example's form of a sub-status."""
    status = _STATUS_BY_NAME.get(value.lower())
    return f"{status.phrase} (HTTP Status Code: {status.value})" if status else value


def localized(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with the ``localizedValue`` texts Azure shows (en-US) where they differ from ``value``."""
    out = copy.deepcopy(record)
    shown = {
        "operationName": lambda v: _OPERATION_DISPLAY.get(v.lower(), v),
        "eventName": lambda v: _EVENT_DISPLAY.get(v.lower(), v),
        "subStatus": _sub_status_display,
    }
    for key, display in shown.items():
        value = out.get(key)
        if isinstance(value, dict) and value.get("value"):
            value["localizedValue"] = display(str(value["value"]))
    return out


def select_fields(record: dict[str, Any], select: str | None) -> dict[str, Any]:
    """``record`` reduced to the ``$select`` names; a nested name keeps its whole top-level object."""
    if not select or not select.strip():
        return record
    wanted = {name.strip().split(".", 1)[0].lower() for name in select.split(",") if name.strip()}
    return {k: v for k, v in record.items() if k.lower() in wanted}


@route("GET", _PATH, action=READ_ACTION, scope=lambda req: f"/subscriptions/{req.params['sub']}")
def list_activity(req: Request) -> Response:
    clauses = parse_filter(req.query.get("$filter"), now=req.world.now())
    select = req.query.get("$select")
    records = [r for r in req.world.visible_activity(req.params["sub"]) if matches(r, clauses)]
    records.sort(key=lambda r: parse_iso(str(r.get("eventTimestamp"))), reverse=True)
    size = max(1, int(req.world.knob("activityLogPageSize", 200)))
    try:
        start = int(req.query.get("$skiptoken") or 0)
    except ValueError:
        raise ArmError(400, "BadRequest", "The $skipToken query parameter is invalid.", flat=True) from None
    body: dict[str, Any] = {"value": [select_fields(localized(r), select) for r in records[start:start + size]]}
    if start + size < len(records):
        query = {"api-version": req.api_version or "2015-04-01", "$filter": req.query["$filter"]}
        if select:
            query["$select"] = select
        query["$skipToken"] = str(start + size)
        body["nextLink"] = f"{req.base_url}{req.path}?{urlencode(query)}"
    return Response(200, body)
