"""``POST /api/replay``'s input limits (CONTRACT.md §5), through the genuine worker on a sandbox
and Azurite: 413 over the size limits, 400 for every other unreadable body, each answered with
one line before anything is stored or queued; ``dryRun`` read strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from remediation.errors import InputError
from remediation.replay_request import MAX_BODY_BYTES, MAX_EVENTS, TooLarge, read_replay
from remediation.signal import MAX_DEPTH, nesting_depth
from tests.app import World

BIG_BUDGET = {"REMEDIATION_REDEPLOY_BUDGET_SECONDS": "600"}  # any replay that runs would be queued


def nothing_kept(w: World, resource_id: str) -> None:
    """Nothing ran, was stored or was queued."""
    assert w.service.ledger.reports_for(resource_id) == []
    assert list(w.queue.peek_messages(max_messages=32)) == []
    assert w.remediator_writes() == []


def one_line_error(answer: Any) -> str:
    assert isinstance(answer, dict) and set(answer) == {"error"}, answer
    error = answer["error"]
    assert isinstance(error, str) and error and error.splitlines() == [error], error
    return error


def padded(event: dict[str, Any], size: int) -> bytes:
    """``event`` as JSON of exactly ``size`` bytes (a long extra field)."""
    base = json.dumps({**event, "padding": ""}).encode()
    return json.dumps({**event, "padding": "x" * (size - len(base))}).encode()


# --- 413 -----------------------------------------------------------------------------------------------


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings=BIG_BUDGET)
def test_a_body_over_one_mebibyte_is_413_before_anything_is_kept(world: World) -> None:
    event = world.fail()
    body = padded(event, MAX_BODY_BYTES + 1)
    assert len(body) == MAX_BODY_BYTES + 1
    status, answer = world.http("replay", "POST", "replay", body=body)
    assert status == 413
    assert "1 MiB" in one_line_error(answer)
    nothing_kept(world, event["subject"])


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings=BIG_BUDGET)
def test_more_than_a_hundred_events_is_413_before_anything_is_kept(world: World) -> None:
    event = world.fail()
    status, answer = world.http("replay", "POST", "replay", body=[event] * (MAX_EVENTS + 1))
    assert status == 413
    assert str(MAX_EVENTS) in one_line_error(answer)
    nothing_kept(world, event["subject"])


def test_the_limits_themselves_are_accepted() -> None:
    skip = {"id": "1", "eventType": "Other.Event", "subject": "/subscriptions/s", "eventTime": "2026-01-01T00:00:00Z",
            "data": {}, "dataVersion": "1"}
    assert len(read_replay(padded(skip, MAX_BODY_BYTES), {}).items) == 1
    assert len(read_replay(json.dumps([skip] * MAX_EVENTS).encode(), {}).items) == MAX_EVENTS
    with pytest.raises(TooLarge):
        read_replay(padded(skip, MAX_BODY_BYTES + 1), {})
    with pytest.raises(TooLarge):
        read_replay(json.dumps([skip] * (MAX_EVENTS + 1)).encode(), {})


# --- dryRun ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["on", "1", "yes", "True ", " true", "", "tru", "ｔｒｕｅ", "true,false", "0"])
def test_a_dry_run_query_value_other_than_true_or_false_is_400(world: World, value: str) -> None:
    event = world.fail()
    status, answer = world.http("replay", "POST", "replay", body=event, query={"dryRun": value})
    assert status == 400
    assert "dryRun" in one_line_error(answer)
    nothing_kept(world, event["subject"])


@pytest.mark.parametrize("name, value", [("dryRun", "true"), ("dryrun", "true"), ("DRYRUN", "TRUE"),
                                         ("dryRun", "tRuE")])
def test_a_dry_run_query_parameter_in_any_case_plans_only(world: World, name: str, value: str) -> None:
    event = world.fail()
    status, report = world.http("replay", "POST", "replay", body=event, query={name: value})
    assert status == 200, report
    assert report["outcome"] == "dry-run"
    assert world.remediator_writes() == []


@pytest.mark.parametrize("value", ["yes", "on", 1, 0, None, [], {}, "True "])
def test_a_dry_run_in_a_replay_by_resource_id_is_true_or_false_only(world: World, value: Any) -> None:
    event = world.fail()
    status, answer = world.http("replay", "POST", "replay", body={"resourceId": event["subject"], "dryRun": value})
    assert status == 400
    assert "dryRun" in one_line_error(answer)
    nothing_kept(world, event["subject"])


def test_a_dry_run_string_in_any_case_is_read_in_the_body(world: World) -> None:
    event = world.fail()
    status, report = world.http("replay", "POST", "replay", body={"resourceId": event["subject"], "dryRun": "TRUE"})
    assert status == 200 and report["outcome"] == "dry-run"
    assert world.remediator_writes() == []


def test_a_query_and_a_body_that_disagree_are_400(world: World) -> None:
    event = world.fail()
    status, answer = world.http("replay", "POST", "replay", body={"resourceId": event["subject"], "dryRun": False},
                                query={"dryRun": "true"})
    assert status == 400
    assert "disagree" in one_line_error(answer)
    nothing_kept(world, event["subject"])


@pytest.mark.parametrize("field", ["dry_run", "DryRun", "force", "claims"])
def test_a_replay_by_resource_id_holds_only_its_three_fields(world: World, field: str) -> None:
    event = world.fail()
    status, answer = world.http("replay", "POST", "replay", body={"resourceId": event["subject"], field: True})
    assert status == 400
    assert field in one_line_error(answer)
    nothing_kept(world, event["subject"])


@pytest.mark.parametrize("where", ["event", "data"])
@pytest.mark.parametrize("spelling", ["dryRun", "dryrun", "DRYRUN"])
def test_a_dry_run_inside_an_event_is_400_not_a_real_run(world: World, where: str, spelling: str) -> None:
    event = world.fail()
    forged = json.loads(json.dumps(event))
    (forged if where == "event" else forged["data"])[spelling] = True
    for body in (forged, [event, forged]):
        status, answer = world.http("replay", "POST", "replay", body=body)
        assert status == 400
        assert "dry run" in one_line_error(answer)
    nothing_kept(world, event["subject"])


# --- shapes ---------------------------------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_nesting_deeper_than_64_levels_is_400_and_64_is_read(world: World) -> None:
    event = world.fail()
    for body in (nested(MAX_DEPTH + 1), nested(200_000), json.dumps({**event, "x": json.loads(nested(MAX_DEPTH))})
                 .encode()):
        status, answer = world.http("replay", "POST", "replay", body=body)
        assert status == 400
        assert "deeper than 64" in one_line_error(answer)
    nothing_kept(world, event["subject"])
    inner = json.loads(nested(MAX_DEPTH - 2))  # event object + field + this = 64 levels
    status, report = world.http("replay", "POST", "replay", body={**event, "x": inner}, query={"dryRun": "true"})
    assert status == 200 and report["outcome"] == "dry-run"


def test_an_event_grid_delivery_nested_too_deep_is_dropped_as_malformed(world: World) -> None:
    event = world.fail()
    deep = json.dumps({**event, "x": "PLACEHOLDER"}).replace('"PLACEHOLDER"', "[" * 5000 + "]" * 5000)
    assert world.service.job_for_event(deep) is None  # logged, not raised: redelivering cannot help
    assert list(world.queue.peek_messages(max_messages=32)) == []


def test_nesting_depth_counts_brackets_outside_strings_only() -> None:
    assert nesting_depth('{"a": "[[[[{{{{", "b": [{"c": "]]]\\"[["}]}') == 3
    assert nesting_depth("[" * 10_000 + "]" * 10_000) == 10_000
    assert nesting_depth("[" * 10_000, stop_above=64) == 65
    assert nesting_depth("17") == 0


def test_an_event_without_a_resource_uri_is_400_or_skipped_never_500(world: World) -> None:
    event = world.fail()
    failure = json.loads(json.dumps(event))
    del failure["data"]["resourceUri"]
    status, answer = world.http("replay", "POST", "replay", body=failure)
    assert status == 400
    assert "resourceUri" in one_line_error(answer)
    other = {**failure, "eventType": "Microsoft.Resources.ResourceDeleteSuccess"}
    status, report = world.http("replay", "POST", "replay", body=other)
    assert status == 200
    assert report["outcome"] == "skipped" and report["resourceId"] == event["subject"]


@pytest.mark.parametrize("body, message", [
    (b"", "empty"),
    (b"   ", "empty"),
    (b'"a string"', "neither"),
    (b"17", "neither"),
    (b"null", "neither"),
    (b'{"a": NaN}', "NaN"),
    (b'{"a": Infinity}', "Infinity"),
    (b"\xff\xfe{}", "UTF-8"),
    (b"[1, 2]", "event[0]"),
    (b'{"resourceId": 17}', "resourceId"),
    (b'{"id": "x", "eventType": "t", "subject": "s", "data": []}', "data"),
])
def test_malformed_bodies_are_400_in_one_line(world: World, body: bytes, message: str) -> None:
    status, answer = world.http("replay", "POST", "replay", body=body)
    assert status == 400
    assert message in one_line_error(answer)


@pytest.mark.parametrize("definition, message", [
    ({"properties": {"containers": "web"}}, "properties.containers is not an array"),
    ({"properties": {"containers": [{"properties": {"image": "UPPER:tag:x"}}]}}, "image"),
    ({"identity": []}, "identity is not a JSON object"),
    ({"properties": {"imageRegistryCredentials": [17]}}, "imageRegistryCredentials[0]"),
])
def test_a_definition_the_app_cannot_read_is_400_and_never_a_failed_broadcast(
        world: World, definition: dict[str, Any], message: str) -> None:
    event = world.fail()
    sent: list[Any] = []
    world.service.notifier.send = sent.append  # type: ignore[method-assign,assignment]
    status, answer = world.http("replay", "POST", "replay", body={"resourceId": event["subject"],
                                                                  "definition": definition})
    assert status == 400
    assert message in one_line_error(answer)
    assert sent == []
    nothing_kept(world, event["subject"])


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings=BIG_BUDGET)
def test_a_replay_whose_every_item_is_skipped_answers_200_at_once(world: World) -> None:
    event = world.fail()
    others = [{**event, "id": f"other-{i}", "eventType": "Microsoft.Resources.ResourceWriteSuccess"} for i in range(8)]
    status, reports = world.http("replay", "POST", "replay", body=others)
    assert status == 200, reports
    assert [r["outcome"] for r in reports] == ["skipped"] * 8
    assert list(world.queue.peek_messages(max_messages=32)) == []
    status, _ = world.http("replay", "POST", "replay", body=[event, *others])
    assert status == 202  # one item would really run: that one may outlast the request


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={
    **BIG_BUDGET, "REMEDIATION_ALLOWED_SCOPES": "/subscriptions/00000000-0000-0000-0000-00000000ffff"})
def test_a_replay_outside_the_allowed_scopes_answers_200_at_once(world: World) -> None:
    event = world.fail()
    status, report = world.http("replay", "POST", "replay", body={"resourceId": event["subject"]})
    assert status == 200 and report["outcome"] == "skipped"
    assert list(world.queue.peek_messages(max_messages=32)) == []


def test_read_replay_raises_only_input_errors_for_what_it_refuses() -> None:
    for body in (b"[", b"{}", b"[[]]", b'{"resourceId": "/subscriptions/s/resourceGroups/g"}'):
        with pytest.raises(InputError):
            read_replay(body, {})
