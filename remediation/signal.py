"""Turn an Event Grid delivery (or a replayed one) into a :class:`FailureSignal`, or say why not.

Accepted shapes, one event or a JSON array of them:

- Event Grid schema: ``id``, ``eventType``, ``subject``, ``eventTime``, ``topic``, ``data``,
  ``dataVersion``; dead-letter records are the same plus ``deadLetterReason``,
  ``deliveryAttempts``, ``lastDeliveryOutcome``, ... and parse the same way.
- CloudEvents 1.0: ``specversion``, ``id``, ``type``, ``source``, ``subject``, ``time``, ``data``.

An event that is not a failed container-group or private-endpoint write is a :class:`Skip` (other
event types, other resource types, other operations); an event that cannot be read raises :class:`InputError` with
a one-line message naming the field, e.g. ``event.data.resourceUri is missing``. Text from a
caller is decoded by :func:`decode_json`, within limits: UTF-8, no ``NaN``, at most
:data:`MAX_DEPTH` levels of nesting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from azure.core.exceptions import DeserializationError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent

from remediation.errors import InputError
from remediation.model import PRIVATE_ENDPOINT_WRITE, FailureSignal, Skip
from remediation.redaction import scrub
from remediation.resource_ids import ascii_only, parse_resource_id

WRITE_FAILURE = "Microsoft.Resources.ResourceWriteFailure"
CONTAINER_GROUP_TYPE = "Microsoft.ContainerInstance/containerGroups"
CONTAINER_GROUP_WRITE = "Microsoft.ContainerInstance/containerGroups/write"
PRIVATE_ENDPOINT_TYPE = "Microsoft.Network/privateEndpoints"
HANDLED_TYPES = (CONTAINER_GROUP_TYPE, PRIVATE_ENDPOINT_TYPE)
WRITES = {CONTAINER_GROUP_TYPE.lower(): CONTAINER_GROUP_WRITE, PRIVATE_ENDPOINT_TYPE.lower(): PRIVATE_ENDPOINT_WRITE}
"""The failed writes a run handles, by resource type (lower): a container group's, and a private
endpoint's (a registry's endpoint in the ACI-delegated subnet). Whether the endpoint targets a
registry is in its definition, which the event does not carry: the run reads it and skips
endpoints of anything else."""

OBJECT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TENANT_ID_CLAIM = "http://schemas.microsoft.com/identity/claims/tenantid"

SignalSchema = Literal["eventgrid", "cloudevents", "replay", "cli", "sweep"]

MAX_DEPTH = 64
"""How deeply arrays and objects may nest in an event's JSON (an ARM event nests 4 levels)."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def signal_for_resource(
    resource_id: str, *, definition: dict[str, Any] | None = None, schema: SignalSchema = "replay"
) -> FailureSignal:
    """A signal for a container group named directly (replay by resource id, the CLI, a sweep).

    Raises :class:`InputError` when ``resource_id`` is not a container-group id.
    """
    if not isinstance(resource_id, str):
        raise InputError("resourceId must be a string")
    try:
        subscription, group, provider_type, name = parse_resource_id(ascii_only(resource_id))
    except InputError as err:
        raise InputError(f"resourceId: {err}") from err
    if not group or provider_type.lower() != CONTAINER_GROUP_TYPE.lower():
        raise InputError(f"resourceId {resource_id!r} is not a {CONTAINER_GROUP_TYPE} id")
    return FailureSignal(
        resource_id=resource_id.strip().rstrip("/"),
        subscription_id=subscription,
        resource_group=group,
        name=name,
        schema=schema,
        definition=definition,
    )


def decode_json(raw: str | bytes | bytearray, what: str = "the body") -> Any:
    """JSON text (``bytes`` in UTF-8) decoded, or :class:`InputError` with one line: not UTF-8, not
    JSON (``NaN`` and ``Infinity`` included), or nesting deeper than :data:`MAX_DEPTH` levels. The
    depth is counted on the text first, without recursion, since the decoder itself recurses and
    would fail on deep input with a ``RecursionError``."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError(f"{what} is not UTF-8 text") from None
    if nesting_depth(raw, stop_above=MAX_DEPTH) > MAX_DEPTH:
        raise InputError(f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:
        raise InputError(f"{what} is not JSON: {exc}") from None


def nesting_depth(text: str, *, stop_above: int | None = None) -> int:
    """How deeply the arrays and objects of a JSON text nest (``[]`` is 1), counted without
    recursion; with ``stop_above``, counting stops as soon as the depth passes it."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', text)):
        if bracket.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if stop_above is not None and deepest > stop_above:
                break
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_events(body: Any) -> list[FailureSignal | Skip]:
    """Parse one event or a JSON array of events (a delivery batch or a dead-letter blob).

    ``body`` is decoded JSON; ``str``/``bytes`` are decoded first. An empty array, or an array
    element that cannot be read, raises :class:`InputError` (elements are named ``event[i]``).
    """
    if isinstance(body, (str, bytes, bytearray)):
        try:
            body = json.loads(body)
        except ValueError as err:
            raise InputError(f"body is not valid JSON: {err}") from err
    if isinstance(body, list):
        if not body:
            raise InputError("body is an empty array; expected at least one event")
        return [_parse(item, f"event[{i}]") for i, item in enumerate(body)]
    return [_parse(body, "event")]


def parse_event(payload: Mapping[str, Any]) -> FailureSignal | Skip:
    """Parse one event in Event Grid or CloudEvents 1.0 schema. See the module docstring."""
    return _parse(payload, "event")


def _parse(payload: Any, where: str) -> FailureSignal | Skip:
    if not isinstance(payload, Mapping):
        raise InputError(f"{where} is not a JSON object")
    if "specversion" in payload:
        schema: SignalSchema = "cloudevents"
        type_field, time_field = "type", "time"
    elif "eventType" in payload:
        schema, type_field, time_field = "eventgrid", "eventType", "eventTime"
    else:
        raise InputError(f"{where} is neither an Event Grid event (eventType) nor a CloudEvent (specversion)")
    for required in ("id", type_field, "subject", "data"):
        if payload.get(required) in (None, ""):
            raise InputError(f"{where}.{required} is missing")
    for text_field in ("id", type_field, "subject"):
        if not isinstance(payload[text_field], str):
            raise InputError(f"{where}.{text_field} is not a string")
        if not payload[text_field].strip():
            raise InputError(f"{where}.{text_field} is missing")
    if not isinstance(payload["data"], Mapping):
        raise InputError(f"{where}.data is not a JSON object")
    event_type, data = _envelope(payload, schema, where)

    if event_type.lower() != WRITE_FAILURE.lower():
        # the skipped report needs a resource: an ARM event's subject is its resource id
        resource = _text(data.get("resourceUri")) or _text(payload["subject"])
        return Skip(f"event type {event_type} is not {WRITE_FAILURE}", resource_id=resource)
    resource_uri = _text(data.get("resourceUri"))
    if not resource_uri:
        raise InputError(f"{where}.data.resourceUri is missing")
    try:
        subscription, group, provider_type, name = parse_resource_id(ascii_only(resource_uri))
    except InputError as err:
        raise InputError(f"{where}.data.resourceUri: {err}") from err
    expected = WRITES.get(provider_type.lower()) if group else None
    if expected is None:
        return Skip(f"resource type {provider_type} is not {' or '.join(HANDLED_TYPES)}", resource_id=resource_uri)
    # ARM always sends operationName; a hand-written replay without it is taken as the write.
    operation = _text(data.get("operationName")) or expected
    if operation.lower() != expected.lower():
        return Skip(f"operation {operation} is not {expected}", resource_id=resource_uri)

    claims = data.get("claims")
    claims = claims if isinstance(claims, Mapping) else {}
    return FailureSignal(
        resource_id=resource_uri,
        subscription_id=subscription,
        resource_group=group,
        name=name,
        correlation_id=_text(data.get("correlationId")),
        operation_name=operation,
        tenant_id=_text(data.get("tenantId")) or _text(claims.get(TENANT_ID_CLAIM)) or _text(claims.get("tid")),
        caller_object_id=_text(claims.get(OBJECT_ID_CLAIM)) or _text(claims.get("oid")),
        event_id=_text(payload.get("id")),
        event_time=_text(payload.get(time_field)),
        event_type=event_type,
        schema=schema,
    )


def scrub_event(payload: Any) -> Any:
    """A copy of an event to keep (a queued job), scrubbed like a report
    (:func:`remediation.redaction.scrub`), so a token a caller put in the claims, the headers or
    anywhere else is not kept.

    What the parser reads keeps its names (none looks secret), so it reads the copy as it reads the
    event, unless one of those values itself holds something secret-shaped.
    """
    return scrub(payload)


def _envelope(payload: Mapping[str, Any], schema: SignalSchema, where: str) -> tuple[str, Mapping[str, Any]]:
    """Read the envelope with the SDK's own models, so both schemas are held to the SDK's rules."""
    try:
        if schema == "cloudevents":
            if not payload.get("source"):
                raise InputError(f"{where}.source is missing")
            if "data_base64" in payload:
                raise InputError(f"{where}.data_base64 is not supported; ARM events carry JSON data")
            cloud_event: CloudEvent[Any] = CloudEvent.from_dict(dict(payload))
            event_type, data = cloud_event.type, cloud_event.data
        else:
            grid_event = EventGridEvent.from_dict(dict(payload))
            event_type, data = grid_event.event_type, grid_event.data
    except InputError:
        raise
    except (DeserializationError, ValueError, IndexError, TypeError) as err:
        # With the fields checked above, the SDKs fail only on an unreadable timestamp.
        field = "time" if schema == "cloudevents" else "eventTime"
        if payload.get(field) is not None:
            raise InputError(f"{where}.{field} is not a valid timestamp: {payload.get(field)!r}") from err
        raise InputError(f"{where} is not a valid {schema} event: {str(err).splitlines()[0]}") from err
    if not isinstance(data, Mapping):
        raise InputError(f"{where}.data is not a JSON object")
    return str(event_type), data


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
