"""Event parsing on the real Event Grid samples (Event Grid schema, CloudEvents, dead-letter records)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from remediation.errors import InputError
from remediation.model import FailureSignal, Skip
from remediation.signal import parse_event, parse_events, signal_for_resource

from .reference import SAMPLES

SUB = "00000000-0000-0000-0000-000000000001"
GROUP_ID = f"/subscriptions/{SUB}/resourcegroups/rg-apps/providers/Microsoft.ContainerInstance/containerGroups/web"
CALLER = "11111111-2222-3333-4444-555555555555"
CORRELATION = "fb67d8a7-f827-4947-b917-6524b42d93b6"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TID_CLAIM = "http://schemas.microsoft.com/identity/claims/tenantid"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def as_failure(event: dict[str, Any], *, resource_id: str = GROUP_ID) -> dict[str, Any]:
    """The docs' sample turned into a failed container-group write (same schema, per the docs)."""
    event = copy.deepcopy(event)
    type_key = "type" if "specversion" in event else "eventType"
    event[type_key] = "Microsoft.Resources.ResourceWriteFailure"
    event["subject"] = resource_id
    data = event["data"]
    data.update(resourceUri=resource_id, resourceProvider="Microsoft.ContainerInstance",
                operationName="Microsoft.ContainerInstance/containerGroups/write", status="Failed",
                correlationId=CORRELATION)
    data["authorization"]["scope"] = resource_id
    data["claims"][OID_CLAIM] = CALLER
    return event


def eventgrid_failure() -> dict[str, Any]:
    return as_failure(sample("eventgrid_arm_ResourceWriteSuccess_eventgridschema_resourcegroup_topic.json")[0])


def cloudevents_failure() -> dict[str, Any]:
    return as_failure(sample("eventgrid_arm_ResourceWriteSuccess_cloudevents_resourcegroup_source.json")[0])


def test_eventgrid_schema_failure_becomes_a_signal() -> None:
    result = parse_event(eventgrid_failure())
    assert result == FailureSignal(
        resource_id=GROUP_ID,
        subscription_id=SUB,
        resource_group="rg-apps",
        name="web",
        correlation_id=CORRELATION,
        tenant_id="{tenant-id}",
        caller_object_id=CALLER,
        event_id="4db48cba-50a2-455a-93b4-de41a3b5b7f6",
        event_time="2018-07-19T18:38:04.6117357Z",
        schema="eventgrid",
    )


def test_cloudevents_failure_becomes_a_signal() -> None:
    result = parse_event(cloudevents_failure())
    assert isinstance(result, FailureSignal)
    assert result.schema == "cloudevents"
    assert result.event_time == "2018-07-19T18:38:04.6117357Z"
    assert (result.resource_group, result.name, result.caller_object_id) == ("rg-apps", "web", CALLER)
    assert result.correlation_id == CORRELATION


def test_subject_casing_and_type_casing_do_not_matter() -> None:
    resource_id = f"/subscriptions/{SUB}/resourceGroups/RG/providers/microsoft.containerinstance/CONTAINERGROUPS/Web"
    result = parse_event(as_failure(sample(
        "eventgrid_arm_ResourceWriteSuccess_eventgridschema_resourcegroup_topic.json")[0], resource_id=resource_id))
    assert isinstance(result, FailureSignal)
    assert (result.resource_id, result.resource_group, result.name) == (resource_id, "RG", "Web")


@pytest.mark.parametrize("name", [
    "eventgrid_arm_ResourceWriteSuccess_eventgridschema_resourcegroup_topic.json",
    "eventgrid_arm_ResourceWriteSuccess_cloudevents_resourcegroup_source.json",
    "eventgrid_arm_ResourceDeleteSuccess_eventgridschema_subscription_topic_with_httpRequest.json",
])
def test_other_event_types_are_skipped(name: str) -> None:
    (result,) = parse_events(sample(name))
    assert isinstance(result, Skip)
    assert "is not Microsoft.Resources.ResourceWriteFailure" in result.reason
    assert "Microsoft.Resources.Resource" in result.reason


def test_delete_failure_of_a_container_group_is_skipped() -> None:
    event = eventgrid_failure()
    event["eventType"] = "Microsoft.Resources.ResourceDeleteFailure"
    result = parse_event(event)
    assert isinstance(result, Skip) and "ResourceDeleteFailure" in result.reason
    assert result.resource_id == GROUP_ID


def test_write_failure_of_another_resource_type_is_skipped() -> None:
    event = sample("eventgrid_arm_ResourceWriteSuccess_eventgridschema_resourcegroup_topic.json")[0]
    event["eventType"] = "Microsoft.Resources.ResourceWriteFailure"
    result = parse_event(event)
    assert result == Skip(
        "resource type Microsoft.Storage/storageAccounts is not Microsoft.ContainerInstance/containerGroups or "
        "Microsoft.Network/privateEndpoints",
        resource_id=event["data"]["resourceUri"],
    )


def test_child_resource_of_a_container_group_is_skipped() -> None:
    event = as_failure(sample("eventgrid_arm_ResourceWriteSuccess_eventgridschema_resourcegroup_topic.json")[0],
                       resource_id=GROUP_ID + "/containers/app")
    result = parse_event(event)
    assert isinstance(result, Skip) and "Microsoft.ContainerInstance/containerGroups/containers" in result.reason


def test_other_operation_on_a_container_group_is_skipped() -> None:
    event = eventgrid_failure()
    event["data"]["operationName"] = "Microsoft.ContainerInstance/containerGroups/restart/action"
    result = parse_event(event)
    assert isinstance(result, Skip) and "restart/action" in result.reason


def test_operation_name_compares_case_insensitively() -> None:
    event = eventgrid_failure()
    event["data"]["operationName"] = "MICROSOFT.CONTAINERINSTANCE/CONTAINERGROUPS/WRITE"
    assert isinstance(parse_event(event), FailureSignal)


def test_dead_letter_sample_is_read_and_skipped() -> None:
    (result,) = parse_events(sample("eventgrid_deadletter_event_eventgridschema.json"))
    assert isinstance(result, Skip) and "Microsoft.Storage.BlobCreated" in result.reason


def test_dead_letter_record_of_a_failure_parses_like_the_event() -> None:
    record = sample("eventgrid_deadletter_event_eventgridschema.json")
    failure = eventgrid_failure()
    dead = {**failure, **{k: record[k] for k in ("deadLetterReason", "deliveryAttempts", "lastDeliveryOutcome",
                                                   "publishTime", "lastDeliveryAttemptTime")}}
    assert parse_event(dead) == parse_event(failure)


def test_a_dead_letter_blob_with_several_records_parses_each() -> None:
    body = [eventgrid_failure(), sample("eventgrid_deadletter_event_eventgridschema.json"), cloudevents_failure()]
    results = parse_events(json.dumps(body))
    assert [type(r).__name__ for r in results] == ["FailureSignal", "Skip", "FailureSignal"]


def test_claims_short_names_and_tenant_fallback() -> None:
    event = eventgrid_failure()
    claims = event["data"]["claims"]
    del claims[OID_CLAIM]
    claims["oid"] = "short-oid"
    del event["data"]["tenantId"]
    claims[TID_CLAIM] = "tenant-from-claim"
    result = parse_event(event)
    assert isinstance(result, FailureSignal)
    assert (result.caller_object_id, result.tenant_id) == ("short-oid", "tenant-from-claim")


def test_missing_claims_and_correlation_leave_fields_empty() -> None:
    event = eventgrid_failure()
    del event["data"]["claims"], event["data"]["correlationId"], event["data"]["tenantId"]
    result = parse_event(event)
    assert isinstance(result, FailureSignal)
    assert (result.caller_object_id, result.tenant_id, result.correlation_id) == (None, None, None)


def _without(path: str) -> dict[str, Any]:
    event = eventgrid_failure()
    *parents, last = path.split(".")
    node = event
    for key in parents:
        node = node[key]
    del node[last]
    return event


@pytest.mark.parametrize(("payload", "message"), [
    ([], "event is not a JSON object"),
    ("text", "event is not a JSON object"),
    ({"foo": 1}, "event is neither an Event Grid event (eventType) nor a CloudEvent (specversion)"),
    (_without("id"), "event.id is missing"),
    (_without("subject"), "event.subject is missing"),
    (_without("data"), "event.data is missing"),
    (_without("data.resourceUri"), "event.data.resourceUri is missing"),
    ({**eventgrid_failure(), "data": "x"}, "event.data is not a JSON object"),
    ({**eventgrid_failure(), "id": 7}, "event.id is not a string"),
    ({**eventgrid_failure(), "eventTime": "yesterday"}, "event.eventTime is not a valid timestamp: 'yesterday'"),
    ({**cloudevents_failure(), "time": "soon"}, "event.time is not a valid timestamp: 'soon'"),
    ({k: v for k, v in cloudevents_failure().items() if k != "type"}, "event.type is missing"),
    ({**cloudevents_failure(), "source": ""}, "event.source is missing"),
])
def test_malformed_events_raise_one_line_messages(payload: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_event(payload)
    assert str(caught.value) == message


def test_unparsable_resource_uri_names_the_field() -> None:
    event = eventgrid_failure()
    event["data"]["resourceUri"] = "not/a\nresource id"
    with pytest.raises(InputError) as caught:
        parse_event(event)
    assert str(caught.value) == (
        "event.data.resourceUri: resource id 'not/a\\nresource id' is not an ARM resource id"
    )
    assert "\n" not in str(caught.value)


def test_array_elements_are_named_by_index() -> None:
    bad = eventgrid_failure()
    del bad["data"]
    with pytest.raises(InputError) as caught:
        parse_events([eventgrid_failure(), bad])
    assert str(caught.value) == "event[1].data is missing"


@pytest.mark.parametrize(("body", "message"), [
    ([], "body is an empty array; expected at least one event"),
    ("[", "body is not valid JSON: Expecting value: line 1 column 2 (char 1)"),
])
def test_bad_bodies(body: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_events(body)
    assert str(caught.value) == message


def test_signal_for_resource() -> None:
    definition = {"location": "eastus", "properties": {}}
    result = signal_for_resource(GROUP_ID + "/", definition=definition, schema="cli")
    assert result.resource_id == GROUP_ID
    assert (result.subscription_id, result.resource_group, result.name) == (SUB, "rg-apps", "web")
    assert result.definition is definition and result.schema == "cli"
    assert signal_for_resource(GROUP_ID).schema == "replay"


@pytest.mark.parametrize(("resource_id", "message"), [
    (f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x",
     f"resourceId '/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x' "
     "is not a Microsoft.ContainerInstance/containerGroups id"),
    ("containerGroups/web", "resourceId: resource id 'containerGroups/web' is not an ARM resource id"),
    ("", "resourceId: resource id is empty"),
])
def test_signal_for_resource_rejects_other_ids(resource_id: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        signal_for_resource(resource_id)
    assert str(caught.value) == message
