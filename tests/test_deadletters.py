"""Dead letters against a real Azurite: put, list, get, delete, and Event Grid's own format."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from remediation.deadletters import DeadLetterError, DeadLetters
from remediation.model import FailureSignal
from remediation.signal import parse_events

from .azurite import AzuriteInstance

GROUP = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
    "/providers/Microsoft.ContainerInstance/containerGroups/app"
)
T0 = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def failure_event(event_id: str = "evt-1", correlation: str = "corr-1") -> dict[str, Any]:
    return {
        "id": event_id,
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000001",
        "subject": GROUP,
        "eventType": "Microsoft.Resources.ResourceWriteFailure",
        "eventTime": "2025-03-01T12:00:00.0000000Z",
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "resourceUri": GROUP,
            "operationName": "Microsoft.ContainerInstance/containerGroups/write",
            "status": "Failed",
            "correlationId": correlation,
            "subscriptionId": "00000000-0000-0000-0000-000000000001",
            "tenantId": "11111111-1111-1111-1111-111111111111",
        },
    }


@pytest.fixture
def container(azurite: AzuriteInstance) -> str:
    return "dl-" + uuid.uuid4().hex[:16]


@pytest.fixture
def letters(azurite: AzuriteInstance, container: str) -> DeadLetters:
    return DeadLetters(BlobServiceClient.from_connection_string(azurite.connection_string), container=container)


def test_put_list_get_delete_round_trip(letters: DeadLetters) -> None:
    events = [failure_event("evt-1"), failure_event("evt-2", "corr-2")]
    name = letters.put(events, "MaxRunDurationExceeded", delivery_attempts=3, now=T0)

    assert re.fullmatch(r"remediation/2025/03/01/12/[0-9a-f-]{36}\.json", name), name
    assert letters.list() == [name]
    stored = letters.get(name)
    assert [e["id"] for e in stored] == ["evt-1", "evt-2"]
    for original, record in zip(events, stored, strict=True):
        assert {k: record[k] for k in original} == original  # the event itself is untouched
        assert record["deadLetterReason"] == "MaxRunDurationExceeded"
        assert record["deliveryAttempts"] == 3
        assert record["lastDeliveryOutcome"] == "MaxRunDurationExceeded"
        assert record["publishTime"] == original["eventTime"]
        assert record["lastDeliveryAttemptTime"] == "2025-03-01T12:30:00Z"

    assert letters.delete(name) is True
    assert letters.list() == []
    assert letters.delete(name) is False
    with pytest.raises(ResourceNotFoundError):
        letters.get(name)


def test_a_dead_letter_can_be_replayed_as_is(letters: DeadLetters) -> None:
    name = letters.put([failure_event("evt-7", "corr-7")], "transient ARM outage", now=T0)
    [signal] = parse_events(json.dumps(letters.get(name)))
    assert isinstance(signal, FailureSignal)
    assert (signal.resource_id, signal.correlation_id, signal.event_id) == (GROUP, "corr-7", "evt-7")


def test_list_is_oldest_first_and_filters_by_prefix(letters: DeadLetters) -> None:
    late = letters.put([failure_event("late")], "r", now=T0 + timedelta(hours=2))
    early = letters.put([failure_event("early")], "r", now=T0)
    other = letters.put([failure_event("other")], "r", source="sweep", now=T0)
    assert letters.list(prefix="remediation/") == [early, late]
    assert letters.list(prefix="sweep/") == [other]
    assert sorted(letters.list()) == sorted([early, late, other])


def test_event_grids_own_dead_letters_are_read_and_their_fields_kept(
    azurite: AzuriteInstance, container: str, letters: DeadLetters
) -> None:
    record = {**failure_event("evt-eg"), "deadLetterReason": "MaxDeliveryAttemptsExceeded", "deliveryAttempts": 30,
              "lastDeliveryOutcome": "TimedOut", "publishTime": "2025-03-01T12:00:01Z",
              "lastDeliveryAttemptTime": "2025-03-02T12:00:00Z"}
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(container)
    letters.list()  # creates the container
    eg_name = "topic/sub/2025/03/02/12/0d1c6a4e-7d1c-4a1a-9d67-0a3b0f0f0f0f.json"
    blobs.upload_blob(eg_name, json.dumps([record]).encode())
    assert letters.get(eg_name) == [record]

    # Dead-lettered again by the app after a failed replay: attempts and first publish time are history.
    again = letters.get(letters.put(letters.get(eg_name), "replay failed", now=T0))
    assert again[0]["deliveryAttempts"] == 30 and again[0]["publishTime"] == "2025-03-01T12:00:01Z"
    assert again[0]["deadLetterReason"] == "replay failed"


def test_unreadable_content_and_empty_puts_are_errors(
    azurite: AzuriteInstance, container: str, letters: DeadLetters
) -> None:
    with pytest.raises(ValueError, match="no events"):
        letters.put([], "r")
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(container)
    letters.list()
    blobs.upload_blob("bad/not-json.json", b"{oops")
    blobs.upload_blob("bad/numbers.json", b"[1, 2]")
    blobs.upload_blob("bad/single.json", json.dumps(failure_event("single")).encode())
    with pytest.raises(DeadLetterError, match="not JSON"):
        letters.get("bad/not-json.json")
    with pytest.raises(DeadLetterError, match="array of events"):
        letters.get("bad/numbers.json")
    assert [e["id"] for e in letters.get("bad/single.json")] == ["single"]
