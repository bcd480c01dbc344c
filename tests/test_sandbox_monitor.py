"""The Activity Log surface through the real ``azure-mgmt-monitor`` client."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError

from remediation.demo import later_writes, user_write
from sandbox import USER_PRINCIPAL, arm, parse_scenario
from sandbox.scenario import SCENARIO_DIR
from sandbox.server import Request
from sandbox.surfaces.monitor import parse_filter
from sandbox.world import ActivityEntry, iso, parse_iso

from . import sdk
from .reference import SAMPLES
from .worlds import REMEDIATOR, RG, RG_ID, SUB, assignment, identity, registry, world

SAMPLE = SAMPLES / "monitor_activityLogs_listFiltered_2015-04-01.json"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def _since(sb, seconds: float = 3600) -> str:
    return f"eventTimestamp ge '{iso(sb.world.now() - seconds)}'"


def _make_groups(sb, *names: str) -> None:
    for name in names:
        sdk.resources(sb).resource_groups.create_or_update(name, {"location": "eastus"})


def test_filter_without_start_time_is_refused(make_sandbox):
    sb = make_sandbox(world())
    client = sdk.monitor(sb)
    for bad in ("", "resourceGroupName eq 'acr-rg'", "eventTimestamp le '2030-01-01T00:00:00Z'",
                "eventTimestamp ge 2024-01-01", _since(sb) + " and colour eq 'red'"):
        with pytest.raises(HttpResponseError) as info:
            list(client.activity_logs.list(filter=bad))
        assert info.value.status_code == 400
        assert info.value.error.code == "BadRequest"
        assert "$filter" in info.value.error.message


def test_parse_filter_reads_clauses_and_quotes():
    clauses = parse_filter("eventTimestamp ge '2024-01-01T00:00:00Z' AND resourceUri eq 'a''b' "
                           "and eventTimestamp le '2024-01-02T00:00:00Z'")
    assert [(c.field, c.op, c.value) for c in clauses] == [
        ("eventtimestamp", "ge", "2024-01-01T00:00:00Z"), ("resourceuri", "eq", "a'b"),
        ("eventtimestamp", "le", "2024-01-02T00:00:00Z")]


def test_records_deserialize_into_event_data(make_sandbox):
    sb = make_sandbox(world())
    _make_groups(sb, "logged-rg")
    events = list(sdk.monitor(sb).activity_logs.list(filter=_since(sb)))
    assert {e.status.value for e in events} == {"Started", "Succeeded"}
    done = next(e for e in events if e.status.value == "Succeeded")
    assert done.operation_name.value == "Microsoft.Resources/subscriptions/resourceGroups/write"
    assert done.resource_id.endswith("/resourceGroups/logged-rg")
    assert done.caller and done.claims and done.correlation_id
    assert done.properties["statusCode"] == "Created"
    assert abs(done.event_timestamp.timestamp() - sb.world.now()) < 60
    # newest first, as Azure returns them
    assert events[0].event_timestamp >= events[-1].event_timestamp


def test_filters_by_correlation_id_resource_uri_and_provider(make_sandbox):
    sb = make_sandbox(world())
    _make_groups(sb, "first-rg", "second-rg")
    client = sdk.monitor(sb)
    all_events = list(client.activity_logs.list(filter=_since(sb)))
    first = next(e for e in all_events if e.resource_id.endswith("/first-rg"))

    by_corr = list(client.activity_logs.list(filter=f"{_since(sb)} and correlationId eq '{first.correlation_id}'"))
    assert by_corr and {e.correlation_id for e in by_corr} == {first.correlation_id}
    assert len(by_corr) < len(all_events)

    uri = first.resource_id.upper()  # ids compare without regard to case
    by_uri = list(client.activity_logs.list(filter=f"{_since(sb)} and resourceUri eq '{uri}'"))
    assert {e.resource_id for e in by_uri} == {first.resource_id} and len(by_uri) == 2

    by_provider = list(client.activity_logs.list(
        filter=f"{_since(sb)} and resourceProvider eq 'microsoft.resources'"))
    assert len(by_provider) == len(all_events)


def test_time_window_bounds_records(make_sandbox):
    sb = make_sandbox(world())
    _make_groups(sb, "old-rg")
    sb.world.advance(7200)
    _make_groups(sb, "new-rg")
    client = sdk.monitor(sb)
    recent = list(client.activity_logs.list(filter=_since(sb, 600)))
    assert {e.resource_id.rsplit("/", 1)[-1] for e in recent} == {"new-rg"}
    window = f"{_since(sb, 3 * 3600)} and eventTimestamp le '{iso(sb.world.now() - 3600)}'"
    assert {e.resource_id.rsplit("/", 1)[-1] for e in client.activity_logs.list(filter=window)} == {"old-rg"}


def test_lag_hides_entries_until_time_passes(make_sandbox):
    sb = make_sandbox(world(behaviour={"activityLogLagSeconds": 300}))
    _make_groups(sb, "slow-rg")
    client = sdk.monitor(sb)
    assert list(client.activity_logs.list(filter=_since(sb))) == []
    sb.world.advance(301)
    shown = list(client.activity_logs.list(filter=_since(sb)))
    assert {e.resource_id.rsplit("/", 1)[-1] for e in shown} == {"slow-rg"}


def test_select_limits_fields(make_sandbox):
    sb = make_sandbox(world())
    _make_groups(sb, "sel-rg")
    events = list(sdk.monitor(sb).activity_logs.list(filter=_since(sb), select="correlationId,properties,status"))
    assert events and all(e.correlation_id and e.status.value for e in events)
    assert all(e.caller is None and e.operation_name is None and e.claims is None for e in events)
    assert any(e.properties.get("statusCode") == "Created" for e in events)


def test_pages_with_next_link(make_sandbox):
    sb = make_sandbox(world(behaviour={"activityLogPageSize": 3}))
    _make_groups(sb, "p1-rg", "p2-rg", "p3-rg", "p4-rg")  # two records each
    pages = list(sdk.monitor(sb).activity_logs.list(filter=_since(sb)).by_page())
    sizes = [len(list(p)) for p in pages]
    assert sizes == [3, 3, 2]
    page_calls = [r for r in sb.world.request_log if r.path.endswith("/eventtypes/management/values")]
    assert len(page_calls) == 3 and "skiptoken" in page_calls[-1].query.lower()


def test_sample_record_round_trips(make_sandbox):
    sample = json.loads(SAMPLE.read_text())
    record = sample["responses"]["200"]["body"]["value"][0]
    sub = sample["parameters"]["subscriptionId"]
    sb = make_sandbox(world(subscriptions=[SUB, sub]))
    # the sample's window is of 2015: read it as if it were then, within the 90 days kept
    sb.world.advance(parse_iso("2015-01-24T00:00:00Z") - sb.world.now())
    sb.world.activity.append(ActivityEntry(float("-inf"), record))
    events = list(sdk.monitor(sb, sub=sub).activity_logs.list(filter=sample["parameters"]["$filter"]))
    assert len(events) == 1
    event = events[0]
    assert event.correlation_id == record["correlationId"]
    assert event.operation_name.value == record["operationName"]["value"]
    assert event.status.value == "Succeeded" and event.sub_status.value == "Created"
    assert event.properties == {"statusCode": "Created"}
    assert event.claims["name"] == "John Smith"
    assert event.http_request.method == "PUT"
    assert event.event_timestamp.isoformat().startswith("2015-01-21T22:14:26.979277")
    # the sample's group filter really filters
    other = sample["parameters"]["$filter"].replace("MSSupportGroup", "OtherGroup")
    assert list(sdk.monitor(sb, sub=sub).activity_logs.list(filter=other)) == []


def test_failed_write_carries_status_message_and_request_body(make_sandbox):
    sb = make_sandbox(world())
    # a failure logged the way every surface logs one
    req = Request("PUT", f"{RG_ID}/providers/Microsoft.X/y/z", {}, {}, b"", {}, sb.world, sb.arm_endpoint,
                  caller="someone", claims={"oid": "someone", "tid": "t"}, correlation_id="corr-1")
    arm.record_write(req, resource_id=f"{RG_ID}/providers/Microsoft.X/y/z", operation_name="Microsoft.X/y/write",
                     status_code=400, error={"code": "Nope", "message": "no"}, request_body={"a": 1})
    events = list(sdk.monitor(sb).activity_logs.list(filter=f"{_since(sb)} and correlationId eq 'corr-1'"))
    failed = next(e for e in events if e.status.value == "Failed")
    assert failed.properties["statusCode"] == "BadRequest"
    assert json.loads(failed.properties["statusMessage"])["error"]["code"] == "Nope"
    assert json.loads(failed.properties["requestbody"]) == {"a": 1}
    assert failed.resource_group_name == RG


def test_remediator_needs_read_at_the_subscription(make_sandbox):
    at_group = assignment(RG_ID, READER, principal=REMEDIATOR)
    sb = make_sandbox(world(resources=[registry(), identity(), at_group], remediator=True))
    with pytest.raises(HttpResponseError) as info:
        list(sdk.monitor(sb, REMEDIATOR).activity_logs.list(filter=_since(sb)))
    assert info.value.status_code == 403
    assert "Microsoft.Insights/eventtypes/values/read" in info.value.error.message

    at_sub = assignment(f"/subscriptions/{SUB}", READER, principal=REMEDIATOR)
    sb2 = make_sandbox(world(resources=[registry(), identity(), at_sub], remediator=True))
    _make_groups(sb2, "seen-rg")
    assert list(sdk.monitor(sb2, REMEDIATOR).activity_logs.list(filter=_since(sb2)))


def test_later_writes_and_deletes_of_a_group_are_recorded_with_their_caller(make_sandbox):
    """What the product reads to tell whether a failed write is still the group's latest intent."""
    scenario = parse_scenario(json.loads((SCENARIO_DIR / "stale-intent-group-deleted.json").read_text()), "test")
    sb = make_sandbox(scenario)
    assert user_write(sb, scenario) is not None
    later_writes(sb, scenario)
    group = scenario.failed_write["resourceId"]
    log = sdk.monitor(sb, scenario.remediator["principalId"]).activity_logs  # the deployer may not read the log
    records = [e for e in log.list(filter=f"{_since(sb)} and resourceUri eq '{group}'")
               if e.status.value != "Started"]
    ops = [(e.operation_name.value.rsplit("/", 1)[-1], e.status.value, e.caller) for e in records]
    assert ops == [("delete", "Succeeded", USER_PRINCIPAL), ("write", "Succeeded", USER_PRINCIPAL),
                   ("write", "Failed", USER_PRINCIPAL)]  # newest first
    assert sb.world.get(group) is None
