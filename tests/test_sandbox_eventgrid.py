"""Event Grid in the sandbox: the ARM events a write raises, their two schemas, filters, and delivery."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

from sandbox import USER_PRINCIPAL, rbac
from sandbox.eventgrid import CLAIM_OID, dispatcher

from . import sdk
from .reference import SAMPLES
from .worlds import IDENTITY_PRINCIPAL, REGISTRY_ID, SUB, TENANT, assignment, identity, registry, world

WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
WRITE_FAILURE = "Microsoft.Resources.ResourceWriteFailure"
DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess"
ACR_PULL_NAME = "e0000000-0000-4000-8000-000000000001"


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())[0]


def settle(sb: Any) -> None:
    assert dispatcher(sb.world).wait_idle(timeout=10)


def correlation(pipeline_response: Any, _deserialized: Any, _headers: Any) -> str:
    """``cls=`` hook: the correlation id ARM answered with."""
    return str(pipeline_response.http_response.headers["x-ms-correlation-request-id"])


def put_group(sb: Any, name: str, principal: str = USER_PRINCIPAL) -> str:
    return sdk.resources(sb, principal).resource_groups.create_or_update(name, {"location": "eastus"},
                                                                         cls=correlation)


def acr_pull(name: str = ACR_PULL_NAME) -> tuple[str, str, RoleAssignmentCreateParameters]:
    return REGISTRY_ID, name, RoleAssignmentCreateParameters(
        role_definition_id=f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{rbac.ACR_PULL}",
        principal_id=IDENTITY_PRINCIPAL, principal_type="ServicePrincipal")


# --- what an event says ----------------------------------------------------------------------------

def test_create_raises_write_success_in_event_grid_schema(make_sandbox):
    sb = make_sandbox(world())
    got: list[dict[str, Any]] = []
    sb.subscribe(got.append)
    corr = put_group(sb, "new-rg", principal="eeeeeeee-0000-0000-0000-000000000001")
    settle(sb)
    (event,) = got
    expected = sample("eventgrid_arm_ResourceWriteSuccess_eventgridschema_resourcegroup_topic.json")
    assert set(event) == set(expected)
    assert set(event["data"]) == set(expected["data"])  # a first-time create has no httpRequest
    rid = f"/subscriptions/{SUB}/resourceGroups/new-rg"
    assert event["eventType"] == WRITE_SUCCESS and event["subject"].lower() == rid.lower()
    assert (event["dataVersion"], event["metadataVersion"]) == ("2", "1")
    data = event["data"]
    assert data["correlationId"] == corr
    assert data["claims"][CLAIM_OID] == "eeeeeeee-0000-0000-0000-000000000001"
    assert data["operationName"] == "Microsoft.Resources/subscriptions/resourceGroups/write"
    assert data["status"] == "Succeeded"
    assert data["resourceUri"].lower() == rid.lower()
    assert (data["subscriptionId"], data["tenantId"]) == (SUB, TENANT)
    parsed = EventGridEvent.from_dict(event)
    assert parsed.event_type == WRITE_SUCCESS and parsed.data["correlationId"] == corr


def test_update_and_delete_events_carry_http_request(make_sandbox):
    sb = make_sandbox(world())
    got: list[dict[str, Any]] = []
    sb.subscribe(got.append)
    put_group(sb, "new-rg")
    corr = put_group(sb, "new-rg")  # an update of an existing group
    client = sdk.authz(sb)
    client.role_assignments.create(*acr_pull())
    deleted = client.role_assignments.delete(REGISTRY_ID, ACR_PULL_NAME, cls=correlation)
    settle(sb)
    create, update, assign, delete = got
    assert "httpRequest" not in create["data"] and "httpRequest" not in assign["data"]
    assert update["data"]["correlationId"] == corr
    assert update["data"]["httpRequest"]["method"] == "PUT"
    assert delete["eventType"] == DELETE_SUCCESS and delete["data"]["correlationId"] == deleted
    expected = sample("eventgrid_arm_ResourceDeleteSuccess_eventgridschema_subscription_topic_with_httpRequest.json")
    assert set(delete["data"]["httpRequest"]) == set(expected["data"]["httpRequest"])
    assert delete["data"]["httpRequest"]["method"] == "DELETE"
    assert delete["data"]["httpRequest"]["url"].startswith(
        f"https://management.azure.com{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/")
    assert delete["data"]["operationName"] == "Microsoft.Authorization/roleAssignments/delete"
    assert assign["topic"] == f"/subscriptions/{SUB}"  # the subscription system topic is the source


def test_failed_write_raises_write_failure_with_the_response_correlation_id(make_sandbox):
    existing = assignment(REGISTRY_ID, rbac.ACR_PULL)
    sb = make_sandbox(world(resources=[registry(), identity(), existing]))
    got: list[dict[str, Any]] = []
    sb.subscribe(got.append)
    with pytest.raises(HttpResponseError) as info:
        sdk.authz(sb).role_assignments.create(*acr_pull())  # a duplicate: 409 RoleAssignmentExists
    settle(sb)
    (event,) = got
    assert event["eventType"] == WRITE_FAILURE and event["data"]["status"] == "Failed"
    assert event["data"]["correlationId"] == info.value.response.headers["x-ms-correlation-request-id"]
    assert event["data"]["operationName"] == "Microsoft.Authorization/roleAssignments/write"
    assert "error" not in json.dumps(event["data"]).lower()  # the event carries no error text, as in Azure


def test_cloud_events_schema(make_sandbox):
    sb = make_sandbox(world())
    got: list[dict[str, Any]] = []
    sb.subscribe(got.append, schema="CloudEventSchemaV1_0")
    corr = put_group(sb, "new-rg")
    settle(sb)
    (event,) = got
    expected = sample("eventgrid_arm_ResourceWriteSuccess_cloudevents_resourcegroup_source.json")
    assert set(event) == set(expected)
    assert "eventType" not in event and "topic" not in event
    assert (event["specversion"], event["type"]) == ("1.0", WRITE_SUCCESS)
    assert event["source"].lower() == f"/subscriptions/{SUB}"  # the subscription system topic
    parsed = CloudEvent.from_dict(event)
    assert parsed.type == WRITE_SUCCESS and parsed.data["correlationId"] == corr


# --- filters -------------------------------------------------------------------------------------

def test_subscription_filters(make_sandbox):
    existing = assignment(REGISTRY_ID, rbac.ACR_PULL)
    sb = make_sandbox(world(resources=[registry(), identity(), existing]))
    failures: list[dict[str, Any]] = []
    under_rg: list[dict[str, Any]] = []
    everything: list[dict[str, Any]] = []
    sb.subscribe(failures.append, included_event_types=[WRITE_FAILURE])
    # the docs write the prefix with "resourcegroups" in lower case; matching ignores case
    sb.subscribe(under_rg.append, subject_begins_with=f"/subscriptions/{SUB}/resourcegroups/acr-rg/providers/")
    sb.subscribe(everything.append)
    put_group(sb, "elsewhere")
    with pytest.raises(HttpResponseError):
        sdk.authz(sb).role_assignments.create(*acr_pull())
    settle(sb)
    assert [e["eventType"] for e in everything] == [WRITE_SUCCESS, WRITE_FAILURE]
    assert [e["eventType"] for e in failures] == [WRITE_FAILURE]
    assert [e["subject"] for e in under_rg] == [f"{REGISTRY_ID}/providers/Microsoft.Authorization/roleAssignments/"
                                                f"{ACR_PULL_NAME}"]


# --- delivery over HTTP ----------------------------------------------------------------------------

class _Endpoint:
    """A local webhook: records each POST; answers the statuses queued in ``replies`` (then 200)."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], Any]] = []
        self.replies: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.posts.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                self.send_response(endpoint.replies.pop(0) if endpoint.replies else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/events"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def endpoint() -> Iterator[_Endpoint]:
    ep = _Endpoint()
    yield ep
    ep.httpd.shutdown()
    ep.httpd.server_close()


def test_delivery_to_an_http_endpoint_in_both_schemas(make_sandbox, endpoint):
    sb = make_sandbox(world())
    sb.subscribe(endpoint.url)
    sb.subscribe(endpoint.url, schema="CloudEventSchemaV1_0")
    corr = put_group(sb, "new-rg")
    settle(sb)
    by_type = {h["content-type"].split(";")[0]: (h, body) for h, body in endpoint.posts}
    assert set(by_type) == {"application/json", "application/cloudevents+json"}
    headers, batch = by_type["application/json"]
    assert isinstance(batch, list) and len(batch) == 1  # Event Grid schema arrives as an array
    assert headers["aeg-event-type"] == "Notification"
    assert EventGridEvent.from_dict(batch[0]).data["correlationId"] == corr
    _, single = by_type["application/cloudevents+json"]
    assert CloudEvent.from_dict(single).data["correlationId"] == corr


def test_http_delivery_retries_until_the_endpoint_answers_2xx(make_sandbox, endpoint):
    sb = make_sandbox(world())
    endpoint.replies = [500, 503]
    sub = sb.subscribe(endpoint.url)
    put_group(sb, "new-rg")
    settle(sb)
    assert len(endpoint.posts) == 3
    assert [h["aeg-delivery-count"] for h, _ in endpoint.posts] == ["0", "1", "2"]
    assert len({body[0]["id"] for _, body in endpoint.posts}) == 1  # the same event each time
    assert len(sub.failures) == 2


# --- delivery faults -----------------------------------------------------------------------------

def test_duplicate_fault_delivers_the_same_event_twice(make_sandbox):
    sb = make_sandbox(world(behaviour={"faults": [{"match": "* *", "deliver": "duplicate", "times": 1}]}))
    got: list[dict[str, Any]] = []
    sb.subscribe(got.append)
    put_group(sb, "rg-one")
    put_group(sb, "rg-two")
    settle(sb)
    assert [e["subject"].rsplit("/", 1)[-1] for e in got] == ["rg-one", "rg-one", "rg-two"]
    assert got[0]["id"] == got[1]["id"]
    assert got[0] is not got[1]  # each delivery is its own copy


def test_delay_fault_holds_delivery_back(make_sandbox):
    fault = {"match": "* */resourceGroups/slow-rg", "deliver": "delay", "seconds": 2.0, "times": 1}
    sb = make_sandbox(world(behaviour={"faults": [fault]}))
    arrived: dict[str, float] = {}
    sb.subscribe(lambda e: arrived.setdefault(e["subject"].rsplit("/", 1)[-1], time.monotonic()))
    started = time.monotonic()
    put_group(sb, "slow-rg")
    settle(sb)
    assert arrived["slow-rg"] - started >= 2.0
    started = time.monotonic()
    put_group(sb, "fast-rg")  # the fault's pattern does not match this subject
    settle(sb)
    assert arrived["fast-rg"] - started < 1.5


def test_reorder_fault_delivers_an_event_after_the_next_one(make_sandbox):
    sb = make_sandbox(world(behaviour={"faults": [{"match": "* *", "deliver": "reorder", "times": 1}]}))
    got: list[dict[str, Any]] = []
    sb.subscribe(got.append)
    put_group(sb, "rg-one")
    put_group(sb, "rg-two")
    put_group(sb, "rg-three")
    settle(sb)
    published = [e["subject"].rsplit("/", 1)[-1] for e in sb.world.delivered]
    assert published == ["rg-one", "rg-two", "rg-three"]
    assert [e["subject"].rsplit("/", 1)[-1] for e in got] == ["rg-two", "rg-one", "rg-three"]


def test_a_held_event_is_not_lost_when_nothing_follows(make_sandbox):
    fault = {"match": "* *", "deliver": "reorder", "seconds": 0.2, "times": 1}
    sb = make_sandbox(world(behaviour={"faults": [fault]}))
    got: list[dict[str, Any]] = []
    sb.subscribe(got.append)
    put_group(sb, "rg-one")
    settle(sb)
    assert [e["subject"].rsplit("/", 1)[-1] for e in got] == ["rg-one"]
