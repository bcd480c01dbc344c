"""The function app's registered functions, run by the genuine Python worker (``tests.host``)
with what the Functions host puts on the wire.

Each test runs the app against a sandbox (ARM) and a real Azurite (the ledger and the jobs queue).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from remediation.demo import user_write
from remediation.service import Service, set_service
from sandbox.eventgrid import dispatcher, to_cloud_event
from tests.app import World
from tests.host import timer_tick
from tests.http_receiver import Receiver


def run_event(w: World, event: dict[str, Any]) -> None:
    w.deliver(event)
    [result] = w.drain()
    assert result.ok, result.error


def test_event_grid_delivery_remediates_and_the_report_is_queryable(world: World) -> None:
    event = world.fail()
    run_event(world, event)
    status, reports = world.http("list_remediations", "GET", "remediations", query={"resourceId": event["subject"]})
    assert status == 200
    assert [r["outcome"] for r in reports] == ["remediated"]
    assert reports[0]["correlationId"] == event["data"]["correlationId"]
    assert reports[0]["trigger"] == "eventgrid"
    report_id = reports[0]["id"]
    status, one = world.http("get_remediation", "GET", f"remediations/{report_id}", route_params={"id": report_id})
    assert status == 200 and one["outcome"] == "remediated"
    status, missing = world.http("get_remediation", "GET", "remediations/nope", route_params={"id": "nope"})
    assert status == 404 and "error" in missing


def test_twenty_concurrent_deliveries_make_one_remediation(world: World) -> None:
    event = world.fail()
    for _ in range(20):  # Event Grid delivers the same event again and again
        world.deliver(event)
    messages = list(world.queue.receive_messages(max_messages=32))
    assert len(messages) == 20
    host = world.host

    def run(message: Any) -> bool:
        from tests.host import queue_delivery

        data, metadata = queue_delivery(message.content, dequeue_count=message.dequeue_count)
        return host.invoke("run_remediation_job", {"msg": data}, trigger_metadata=metadata).ok

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert all(pool.map(run, messages))
    kinds = sorted(r.path.split("/providers/")[-1].split("/")[1] for r in world.remediator_writes())
    assert kinds == ["containerGroups", "roleAssignments"]  # one role assignment, one redeploy
    reports = world.service.ledger.reports_for(event["subject"])
    assert [r["outcome"] for r in reports] == ["remediated"]


class Crash(BaseException):
    """A worker dying mid-run: nothing is cleaned up."""


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_CLAIM_TTL_SECONDS": "1"})
def test_a_crash_between_fix_and_redeploy_is_completed_by_a_replay(world: World) -> None:
    event = world.fail()
    ledger = world.service.ledger
    original_mark = ledger.mark

    def crash_after_marking(claim: Any, stage: str) -> Any:
        original_mark(claim, stage)
        raise Crash()

    ledger.mark = crash_after_marking  # type: ignore[method-assign]
    world.deliver(event)
    with pytest.raises(Crash):
        world.drain()
    ledger.mark = original_mark  # type: ignore[method-assign]
    assert [w.path.split("/providers/")[-1].split("/")[1] for w in world.remediator_writes()] == ["roleAssignments"]
    time.sleep(1.2)  # the dead worker's claim expires
    status, report = world.http("replay", "POST", "replay", body=event)
    assert status == 200, report
    assert report["outcome"] == "remediated", report
    assert report["redeploy"]["status"] == "succeeded"
    assert any(a["kind"] == "redeploy" and a["status"] == "applied" for a in report["actions"])
    assert world.sb.world.get(event["subject"])["properties"]["provisioningState"] == "Succeeded"
    # the dead worker's delivery comes back: the replay's redeploy picked its fix up, so no second redeploy
    world.queue.clear_messages()
    run_event(world, event)
    kinds = [w.path.split("/providers/")[-1].split("/")[1] for w in world.remediator_writes()]
    assert kinds == ["roleAssignments", "containerGroups"]
    delivered, replayed = world.service.ledger.reports_for(event["subject"])
    assert replayed["trigger"] == "replay"
    assert delivered["trigger"] == "eventgrid" and delivered["outcome"] in ("skipped", "diagnosed")


def test_replay_by_resource_id_dry_run_writes_nothing(world: World) -> None:
    event = world.fail()
    status, report = world.http("replay", "POST", "replay", body={"resourceId": event["subject"], "dryRun": True})
    assert status == 200
    assert report["outcome"] == "dry-run" and report["trigger"] == "replay"
    assert [c["code"] for c in report["causes"]] == ["ACR_PULL_PERMISSION_MISSING"]
    assert world.remediator_writes() == []


def test_replay_of_a_cloud_event_and_a_dead_letter_array(world: World) -> None:
    event = world.fail()
    cloud = to_cloud_event(event)
    status, report = world.http("replay", "POST", "replay", body=cloud, query={"dryRun": "true"})
    assert status == 200 and report["outcome"] == "dry-run"
    dead = [{**event, "deadLetterReason": "MaxDeliveryAttemptsExceeded", "deliveryAttempts": 30}]
    status, reports = world.http("replay", "POST", "replay", body=dead)
    assert status == 200
    assert isinstance(reports, list) and [r["outcome"] for r in reports] == ["remediated"]


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_REDEPLOY_BUDGET_SECONDS": "600"})
def test_replay_that_may_outlast_the_request_is_queued_and_answered_202(world: World) -> None:
    event = world.fail()
    status, body = world.http("replay", "POST", "replay", body={"resourceId": event["subject"]})
    assert status == 202
    assert body["status"] == f"/api/remediations/{body['id']}"
    status, pending = world.http("get_remediation", "GET", "x", route_params={"id": body["id"]})
    assert status == 202 and pending["status"] == "queued"
    assert world.remediator_writes() == []
    world.drain()
    status, done = world.http("get_remediation", "GET", "x", route_params={"id": body["id"]})
    assert status == 200
    # replayed by resource id: the definition comes from the Activity Log of the failed write
    assert done["outcome"] == "remediated"


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not JSON"),
    ({"resourceId": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s"},
     "resourceId"),
    ([], "empty"),
    ({"resourceId": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
                    "Microsoft.ContainerInstance/containerGroups/cg", "dryRun": "yes"}, "dryRun"),
])
def test_replay_rejects_bad_input_in_one_line(world: World, body: Any, message: str) -> None:
    status, answer = world.http("replay", "POST", "replay", body=body)
    assert status == 400
    error = answer["error"]
    assert message.lower() in error.lower() and "\n" not in error


def test_event_that_is_not_ours_queues_nothing_and_is_recorded_as_skipped(world: World) -> None:
    event = world.fail()
    success = {**event, "eventType": "Microsoft.Resources.ResourceWriteSuccess", "id": str(uuid.uuid4())}
    assert world.deliver(success).output("jobs") is None
    assert [r["outcome"] for r in world.service.ledger.reports_for(event["subject"])] == ["skipped"]


def test_health_is_anonymous_and_says_nothing_secret(world: World) -> None:
    status, body = world.http("health_check", "GET", "health")
    assert status == 200 and body["status"] == "ok"
    assert world.host.trigger("health_check")["authLevel"].lower() == "anonymous"
    assert world.host.trigger("replay")["authLevel"].lower() == "function"
    calls_before = len(world.sb.world.request_log)
    world.http("health_check", "GET", "health")
    assert len(world.sb.world.request_log) == calls_before


def test_list_without_resource_id_is_a_400(world: World) -> None:
    status, _ = world.http("list_remediations", "GET", "remediations")
    assert status == 400


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def posted(r: Receiver) -> list[tuple[str, dict[str, Any]]]:
    return [(req.path, json.loads(req.body)) for req in r.requests]


def with_settings(w: World, overrides: dict[str, str]) -> Service:
    """The app restarted with more settings (same sandbox, ledger and queue)."""
    old = w.service
    service = Service.assemble(old.settings.with_overrides(overrides), old.clients, old.ledger,
                               gather_options=old.gather_options, redeploy_options=old.redeploy_options, jobs=old.jobs)
    set_service(service)
    w.service = service
    return service


def test_summaries_go_to_teams_and_slack_and_the_report_says_so(world: World, receiver: Receiver) -> None:
    with_settings(world, {"TEAMS_WEBHOOK_URL": f"{receiver.base}/teams", "SLACK_WEBHOOK_URL": f"{receiver.base}/slack"})
    event = world.fail()
    run_event(world, event)
    report = world.service.ledger.reports_for(event["subject"])[0]
    statuses = {n["channel"]: n["status"] for n in report["notifications"]}
    assert statuses == {"teams": "sent", "slack": "sent", "webhook": "disabled", "eventgrid": "disabled"}
    paths = sorted(p for p, _ in posted(receiver))
    assert paths == ["/slack", "/teams"]
    teams = next(b for p, b in posted(receiver) if p == "/teams")
    assert teams["type"] == "message"
    assert teams["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert receiver.base not in json.dumps(report)


@pytest.mark.scenario("scenarios/healthy.json", settings={"REMEDIATION_SWEEP_ENABLED": "true",
                                                          "REMEDIATION_ALLOWED_SCOPES":
                                                          "/subscriptions/00000000-0000-0000-0000-000000000001"})
def test_sweep_fixes_a_running_group_whose_next_pull_would_fail(world: World) -> None:
    assert user_write(world.sb, world.scenario) is None  # the group deploys and runs
    world.sb.world.settle()
    acr_pull = [a for a in world.sb.world.role_assignments()
                if a["properties"]["roleDefinitionId"].endswith("7f951dda-4ed3-4680-a7ca-43fe172d538d")]
    assert acr_pull, "the healthy scenario grants AcrPull"
    for a in acr_pull:
        world.sb.world.delete(a["id"])  # someone removes the role: the next deploy would fail
    assert world.host.invoke("sweep", {"timer": timer_tick()}).ok
    reports = world.service.ledger.reports_for(world.scenario.failed_write["resourceId"])
    assert [r["trigger"] for r in reports] == ["sweep"]
    assert [c["code"] for c in reports[0]["causes"]] == ["ACR_PULL_PERMISSION_MISSING"]
    kinds = [w.path.split("/providers/")[-1].split("/")[1] for w in world.remediator_writes()]
    assert kinds == ["roleAssignments"]  # fixed, and the running group was not restarted


@pytest.mark.scenario("scenarios/healthy.json")
def test_sweep_is_off_by_default(world: World) -> None:
    assert world.host.invoke("sweep", {"timer": timer_tick()}).ok
    assert [r for r in world.sb.world.request_log if r.caller == world.sb.world.remediator] == []


def test_a_definition_sent_with_a_replay_is_diagnosed_but_drives_no_write(world: World) -> None:
    event = world.fail()
    body = json.loads(json.dumps(world.scenario.failed_write["body"]))
    body["properties"]["containers"][0]["properties"]["command"] = ["/bin/sh", "-c", "anything at all"]
    _, report = world.http("replay", "POST", "replay", body={"resourceId": event["subject"], "definition": body})
    assert [c["code"] for c in report["causes"]] == ["ACR_PULL_PERMISSION_MISSING"]
    assert report["outcome"] == "diagnosed"
    assert all(a["status"] == "skipped" and "REMEDIATION_REDEPLOY_REPLAYED_DEFINITIONS" in a["detail"]
               for a in report["actions"] if a["kind"] in ("assign-role", "redeploy"))
    assert world.remediator_writes() == []  # the caller's word is not Azure's: nothing is written


def test_purge_keeps_recent_reports(world: World) -> None:
    event = world.fail()
    run_event(world, event)
    assert world.host.invoke("purge_ledger", {"timer": timer_tick(past_due=True)}).ok
    assert [r["outcome"] for r in world.service.ledger.reports_for(event["subject"])] == ["remediated"]


def test_a_cloud_events_subscription_is_handled_too(world: World) -> None:
    event = world.fail()
    world.deliver(to_cloud_event(event))
    assert all(r.ok for r in world.drain())
    assert [r["outcome"] for r in world.service.ledger.reports_for(event["subject"])] == ["remediated"]


def test_an_unexpected_error_releases_the_claim_and_the_redelivery_finishes(world: World) -> None:
    event = world.fail()
    world.deliver(event)
    ledger = world.service.ledger
    original = ledger.record_attempt

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("table storage hiccup")

    ledger.record_attempt = broken  # type: ignore[method-assign]
    [message] = world.queue.receive_messages(max_messages=1, visibility_timeout=60)
    from tests.host import queue_delivery

    data, metadata = queue_delivery(message.content, dequeue_count=message.dequeue_count)
    failed = world.host.invoke("run_remediation_job", {"msg": data}, trigger_metadata=metadata)
    assert not failed.ok and "broke off" in failed.error
    ledger.record_attempt = original  # type: ignore[method-assign]
    assert ledger.reports_for(event["subject"]) == []
    world.queue.update_message(message, visibility_timeout=0)
    assert all(r.ok for r in world.drain())  # the queue delivers it again
    assert [r["outcome"] for r in ledger.reports_for(event["subject"])] == ["remediated"]


def test_when_the_activity_log_lags_past_the_wait_the_run_is_retried_not_closed(world: World) -> None:
    world.sb.world.behaviour["activityLogLagSeconds"] = 3600
    event = world.fail()
    job = {"kind": "event", "event": event, "trigger": "eventgrid"}
    service = world.service
    service.gather_options.activity_log_wait_seconds = 0
    with pytest.raises(Exception, match="Activity Log"):
        service.process_job(job, dequeue_count=1)
    world.sb.world.advance(3600)
    [report] = service.process_job(job, dequeue_count=2)
    assert report["outcome"] == "remediated"


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_NOTIFY_COOLDOWN_MINUTES": "30"})
def test_one_message_per_group_per_cool_down_across_instances(world: World, receiver: Receiver) -> None:
    settings = world.service.settings.with_overrides({"SLACK_WEBHOOK_URL": f"{receiver.base}/slack"})
    # two instances of the app, sharing one ledger
    instances = [Service.assemble(settings, world.service.clients, world.service.ledger) for _ in range(2)]
    report = {"resourceId": world.scenario.failed_write["resourceId"], "outcome": "remediated", "causes": [],
              "actions": [], "redeploy": {"status": "succeeded", "attempts": 1}, "trigger": "eventgrid",
              "correlationId": "c", "errorCode": "InaccessibleImage", "schemaVersion": 1, "notifications": []}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: instances[i % 2].notifier.send(report), range(8)))
    slack = [next(n for n in r if n["channel"] == "slack") for r in results]
    assert sorted(n["status"] for n in slack) == ["disabled"] * 7 + ["sent"]
    assert len([p for p, _ in posted(receiver) if p == "/slack"]) == 1


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_CLAIM_TTL_SECONDS": "2"})
def test_two_failures_of_one_group_are_not_remediated_at_once(world: World) -> None:
    event = world.fail()
    assert user_write(world.sb, world.scenario) is not None  # the user tries again: another failed write
    dispatcher(world.sb.world).wait_idle()
    second = [e for e in world.events if "/containergroups/" in e["subject"].lower()][1]
    assert second["data"]["correlationId"] != event["data"]["correlationId"]
    service = world.service
    assert service.ledger.lease(event["subject"], "someone-else")  # a run of the first failure is going on
    [entry] = service.process_job({"kind": "event", "event": second, "trigger": "eventgrid"}, dequeue_count=1)
    assert "another remediation" in entry["requeued"]
    assert world.remediator_writes() == []
    service.ledger.release_lease(event["subject"], "someone-else")
    assert [r.ok for r in world.drain()] == [True]  # the re-enqueued job, once the lease it waited for is over
    assert [r["outcome"] for r in service.ledger.reports_for(event["subject"])] == ["remediated"]


# --- claims and leases that cannot be turned against the app (issue 9, item 2) ---------------------


def first_delivery(w: World) -> Any:
    """Invoke the queue trigger for the one queued message, as the host would, and settle it."""
    from tests.host import queue_delivery

    [message] = w.queue.receive_messages(max_messages=1, visibility_timeout=60)
    data, metadata = queue_delivery(message.content, dequeue_count=message.dequeue_count)
    result = w.host.invoke("run_remediation_job", {"msg": data}, trigger_metadata=metadata)
    if result.ok:
        w.queue.delete_message(message)
    return result


def test_a_failed_run_leaves_its_failure_open_so_a_later_delivery_remediates_it(world: World) -> None:
    world.sb.world.behaviour["activityLogLagSeconds"] = 3600  # read too early: the record is not there yet
    world.service.gather_options.activity_log_wait_seconds = 0
    event = world.fail()
    world.deliver(event)
    assert [r.ok for r in world.drain()] == [False] * (world.service.max_dequeue - 1) + [True]
    world.sb.world.advance(3600)
    world.deliver(event)  # Event Grid delivers the same event again
    assert [r.ok for r in world.drain()] == [True]
    assert [r["outcome"] for r in world.service.ledger.reports_for(event["subject"])] == ["remediated", "failed"]


def test_a_forged_replay_cannot_make_the_genuine_delivery_a_duplicate(world: World) -> None:
    from remediation.signal import OBJECT_ID_CLAIM

    event = world.fail()
    forged = json.loads(json.dumps(event))
    forged.update({"id": str(uuid.uuid4()), "eventTime": "2099-01-01T00:00:00Z"})
    forged["data"]["claims"] = {OBJECT_ID_CLAIM: world.sb.world.remediator}  # "the app's own write"
    status, answer = world.http("replay", "POST", "replay", body=forged)
    assert status in (200, 400), answer  # whatever the forged replay's own fate
    run_event(world, event)
    reports = world.service.ledger.reports_for(event["subject"])
    assert [r["trigger"] for r in reports].count("eventgrid") == 1  # the delivery ran: no duplicate
    assert "remediated" in [r["outcome"] for r in reports]
    assert world.sb.world.get(event["subject"])["properties"]["provisioningState"] == "Succeeded"


def test_a_replay_and_the_delivery_of_one_failure_each_run_and_write_once(world: World) -> None:
    event = world.fail()
    status, report = world.http("replay", "POST", "replay", body=event)
    assert status == 200 and report["outcome"] == "remediated"
    run_event(world, event)  # the delivery is not a duplicate of the replay: it runs, and finds nothing to do
    delivered, replayed = world.service.ledger.reports_for(event["subject"])
    assert (replayed["trigger"], replayed["outcome"]) == ("replay", "remediated")
    assert delivered["trigger"] == "eventgrid" and delivered["outcome"] in ("skipped", "diagnosed")
    kinds = sorted(w.path.split("/providers/")[-1].split("/")[1] for w in world.remediator_writes())
    assert kinds == ["containerGroups", "roleAssignments"]


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_CLAIM_TTL_SECONDS": "2"})
def test_a_busy_group_re_enqueues_the_job_past_the_lease_and_the_delivery_succeeds(world: World) -> None:
    event = world.fail()
    ledger = world.service.ledger
    assert ledger.lease(event["subject"], "another-run")
    held = ledger.lease_held(event["subject"])
    assert held is not None and held.until is not None
    world.deliver(event)
    first = first_delivery(world)
    assert first.ok, first.error  # not bounced through the queue's retries toward a silent end
    assert list(world.queue.receive_messages(max_messages=1)) == []  # invisible until past the lease
    assert world.queue.get_queue_properties().approximate_message_count == 1
    assert ledger.reports_for(event["subject"]) == []
    results = world.drain()
    assert datetime.now(UTC) >= held.until
    assert [r.ok for r in results] == [True]
    assert [r["outcome"] for r in ledger.reports_for(event["subject"])] == ["remediated"]


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_CLAIM_TTL_SECONDS": "1"})
def test_a_group_held_past_every_re_enqueue_ends_in_a_stored_and_notified_failed_report(
        world: World, receiver: Receiver) -> None:
    service = with_settings(world, {"WEBHOOK_URL": f"{receiver.base}/hook"})
    service.max_requeues = 2
    event = world.fail()
    stop = threading.Event()

    def stuck_run() -> None:  # a run that keeps renewing the group's lease
        while not stop.is_set():
            service.ledger.lease(event["subject"], "stuck-run")
            stop.wait(0.2)

    holder = threading.Thread(target=stuck_run)
    holder.start()
    try:
        world.deliver(event)
        results = world.drain()
    finally:
        stop.set()
        holder.join()
    assert [r.ok for r in results] == [True] * 3  # the delivery, then two re-enqueued ones
    [report] = service.ledger.reports_for(event["subject"])
    assert report["outcome"] == "failed" and "gave up" in report["error"] and "\n" not in report["error"]
    assert {n["channel"]: n["status"] for n in report["notifications"]}["webhook"] == "sent"
    assert [json.loads(r.body)["outcome"] for r in receiver.requests] == ["failed"]
    assert world.remediator_writes() == []


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_CLAIM_TTL_SECONDS": "2"})
def test_a_delivery_that_finds_its_failure_claimed_by_a_dead_run_waits_for_it_and_remediates(world: World) -> None:
    event = world.fail()
    ledger = world.service.ledger
    assert ledger.claim(event["subject"], event["data"]["correlationId"], owner="dead-worker") is not None
    world.deliver(event)
    assert [r.ok for r in world.drain()] == [True, True]  # re-enqueued past the dead run's claim, then run
    assert [r["outcome"] for r in ledger.reports_for(event["subject"])] == ["remediated"]


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_CLAIM_TTL_SECONDS": "2"})
def test_a_replay_of_a_busy_group_is_queued_and_answered_202(world: World) -> None:
    event = world.fail()
    assert world.service.ledger.lease(event["subject"], "another-run")
    status, body = world.http("replay", "POST", "replay", body=event)
    assert status == 202 and body["status"] == f"/api/remediations/{body['id']}", body
    status, pending = world.http("get_remediation", "GET", "x", route_params={"id": body["id"]})
    assert status == 202 and pending["status"] == "queued"
    assert [r.ok for r in world.drain()] == [True]
    status, done = world.http("get_remediation", "GET", "x", route_params={"id": body["id"]})
    assert status == 200 and done["outcome"] == "remediated" and done["trigger"] == "replay"


@pytest.mark.scenario("scenarios/credential-ambiguous.json", settings={"REMEDIATION_NOTIFY_COOLDOWN_MINUTES": "30"})
def test_a_dry_run_never_takes_the_cool_down_of_a_report_that_needs_a_person(world: World, receiver: Receiver) -> None:
    with_settings(world, {"SLACK_WEBHOOK_URL": f"{receiver.base}/slack"})
    event = world.fail()
    status, dry = world.http("replay", "POST", "replay", body=event, query={"dryRun": "true"})
    assert status == 200 and dry["outcome"] == "dry-run"
    run_event(world, event)
    [report] = world.service.ledger.reports_for(event["subject"])[:1]
    assert report["outcome"] == "diagnosed"
    assert {n["channel"]: n["status"] for n in report["notifications"]}["slack"] == "sent"
    assert len([p for p, _ in posted(receiver) if p == "/slack"]) == 2
