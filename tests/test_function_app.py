"""The function app's registered functions, called with real azure.functions objects.

Each test runs the app against a sandbox (ARM) and a real Azurite (the ledger).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

import function_app
from remediation.demo import demo_settings, engine_for, user_write
from remediation.ledger import Ledger
from remediation.service import Service, set_service
from sandbox import Sandbox, load_scenario, parse_scenario
from sandbox.eventgrid import dispatcher
from tests.http_receiver import Receiver

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "scenarios" / "missing-acrpull.json"


class Out:
    """What the host passes for an output binding: ``set`` records the value."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def set(self, value: Any) -> None:
        self.values.append(value)

    def get(self) -> Any:
        return self.values[-1] if self.values else None


FUNCTIONS = {f.get_function_name(): f for f in function_app.app.get_functions()}  # indexing twice fails


def fn(name: str) -> Any:
    """A registered function of ``function_app.app``, as the host would call it."""
    assert name in FUNCTIONS, f"no function {name} registered"
    return FUNCTIONS[name].get_user_function()


def bindings(name: str) -> list[dict[str, Any]]:
    return [b.get_dict_repr() for b in FUNCTIONS[name].get_bindings()]


class World:
    def __init__(self, sb: Sandbox, scenario: Any, service: Service) -> None:
        self.sb, self.scenario, self.service = sb, scenario, service
        self.events: list[dict[str, Any]] = []
        sb.subscribe(self.events.append, included_event_types=["Microsoft.Resources.ResourceWriteFailure"])

    def fail(self) -> dict[str, Any]:
        """The user's failing write; returns the container group's ResourceWriteFailure event."""
        assert user_write(self.sb, self.scenario) is not None
        dispatcher(self.sb.world).wait_idle()
        return next(e for e in self.events if "/containergroups/" in e["subject"].lower())

    def remediator_writes(self) -> list[Any]:
        return self.sb.world.writes(self.sb.world.remediator)


def grid_event(event: dict[str, Any]) -> func.EventGridEvent:
    return func.EventGridEvent(
        id=event["id"], data=event["data"], topic=event["topic"], subject=event["subject"],
        event_type=event["eventType"], event_time=datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")[:26]
                                                                         + "+00:00"),
        data_version=event["dataVersion"])


def http(method: str, route: str, *, body: Any = None, params: dict[str, str] | None = None,
         route_params: dict[str, str] | None = None) -> func.HttpRequest:
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    return func.HttpRequest(method, f"http://localhost/api/{route}", body=raw, params=params or {},
                            route_params=route_params or {}, headers={"Content-Type": "application/json"})


@pytest.fixture
def world(azurite: Any, request: pytest.FixtureRequest) -> Iterator[World]:
    marker = request.node.get_closest_marker("scenario")
    data = json.loads((ROOT / marker.args[0] if marker else DEFAULT).read_text())
    overrides: dict[str, str] = dict(marker.kwargs.get("settings", {})) if marker else {}
    scenario = parse_scenario(data, "test")
    with Sandbox(scenario) as sb:
        settings = demo_settings(sb, scenario).with_overrides({
            "REMEDIATION_REDEPLOY_BUDGET_SECONDS": "30", "REMEDIATION_ACTIVITY_LOG_WAIT_SECONDS": "10",
            **overrides})
        engine = engine_for(sb, scenario, settings)
        ledger = Ledger.from_connection_string(azurite.connection_string, table_name=f"t{uuid.uuid4().hex[:12]}",
                                               claim_ttl=__import__("datetime").timedelta(
                                                   seconds=settings.claim_ttl_seconds))
        service = Service.assemble(settings, engine.clients, ledger, gather_options=engine.gather_options,
                                   redeploy_options=engine.redeploy_options)
        set_service(service)
        try:
            yield World(sb, scenario, service)
        finally:
            set_service(None)
            engine.clients.close()
            ledger.close()


def run_event(w: World, event: dict[str, Any]) -> None:
    jobs = Out()
    fn("on_resource_write_failure")(grid_event(event), jobs)
    assert len(jobs.values) == 1
    fn("run_remediation_job")(func.QueueMessage(body=jobs.get().encode()))


def test_event_grid_delivery_remediates_and_the_report_is_queryable(world: World) -> None:
    event = world.fail()
    run_event(world, event)
    listed = fn("list_remediations")(http("GET", "remediations", params={"resourceId": event["subject"]}))
    assert listed.status_code == 200
    reports = json.loads(listed.get_body())
    assert [r["outcome"] for r in reports] == ["remediated"]
    assert reports[0]["correlationId"] == event["data"]["correlationId"]
    assert reports[0]["trigger"] == "eventgrid"
    report_id = reports[0]["id"]
    one = fn("get_remediation")(http("GET", f"remediations/{report_id}", route_params={"id": report_id}))
    assert one.status_code == 200 and json.loads(one.get_body())["outcome"] == "remediated"
    missing = fn("get_remediation")(http("GET", "remediations/nope", route_params={"id": "nope"}))
    assert missing.status_code == 404 and "error" in json.loads(missing.get_body())


def test_twenty_concurrent_deliveries_make_one_remediation(world: World) -> None:
    event = world.fail()
    jobs: list[str] = []
    for _ in range(20):  # Event Grid delivers the same event again and again
        out = Out()
        fn("on_resource_write_failure")(grid_event(event), out)
        jobs.extend(out.values)
    assert len(jobs) == 20
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda body: fn("run_remediation_job")(func.QueueMessage(body=body.encode())), jobs))
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
    with pytest.raises(Crash):
        run_event(world, event)
    ledger.mark = original_mark  # type: ignore[method-assign]
    assert [w.path.split("/providers/")[-1].split("/")[1] for w in world.remediator_writes()] == ["roleAssignments"]
    time.sleep(1.2)  # the dead worker's claim expires
    resp = fn("replay")(http("POST", "replay", body=event), Out())
    assert resp.status_code == 200, resp.get_body()
    report = json.loads(resp.get_body())
    assert report["outcome"] == "remediated", report
    assert report["redeploy"]["status"] == "succeeded"
    assert any(a["kind"] == "redeploy" and a["status"] == "applied" for a in report["actions"])
    assert world.sb.world.get(event["subject"])["properties"]["provisioningState"] == "Succeeded"


def test_replay_by_resource_id_dry_run_writes_nothing(world: World) -> None:
    event = world.fail()
    resp = fn("replay")(http("POST", "replay", body={"resourceId": event["subject"], "dryRun": True}), Out())
    assert resp.status_code == 200
    report = json.loads(resp.get_body())
    assert report["outcome"] == "dry-run" and report["trigger"] == "replay"
    assert [c["code"] for c in report["causes"]] == ["ACR_PULL_PERMISSION_MISSING"]
    assert world.remediator_writes() == []


def test_replay_of_a_cloud_event_and_a_dead_letter_array(world: World) -> None:
    event = world.fail()
    cloud = {"specversion": "1.0", "type": event["eventType"], "source": event["topic"], "subject": event["subject"],
             "id": event["id"], "time": event["eventTime"], "data": event["data"]}
    resp = fn("replay")(http("POST", "replay", body=cloud, params={"dryRun": "true"}), Out())
    assert resp.status_code == 200 and json.loads(resp.get_body())["outcome"] == "dry-run"
    dead = [{**event, "deadLetterReason": "MaxDeliveryAttemptsExceeded", "deliveryAttempts": 30}]
    resp = fn("replay")(http("POST", "replay", body=dead), Out())
    assert resp.status_code == 200
    reports = json.loads(resp.get_body())
    assert isinstance(reports, list) and [r["outcome"] for r in reports] == ["remediated"]


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_REDEPLOY_BUDGET_SECONDS": "600"})
def test_replay_that_may_outlast_the_request_is_queued_and_answered_202(world: World) -> None:
    event = world.fail()
    queue = Out()
    resp = fn("replay")(http("POST", "replay", body={"resourceId": event["subject"]}), queue)
    assert resp.status_code == 202
    body = json.loads(resp.get_body())
    assert body["status"] == f"/api/remediations/{body['id']}"
    pending = fn("get_remediation")(http("GET", "x", route_params={"id": body["id"]}))
    assert pending.status_code == 202 and json.loads(pending.get_body())["status"] == "queued"
    assert world.remediator_writes() == []
    fn("run_remediation_job")(func.QueueMessage(body=queue.get().encode()))
    done = fn("get_remediation")(http("GET", "x", route_params={"id": body["id"]}))
    assert done.status_code == 200
    # replayed by resource id: the definition comes from the Activity Log of the failed write
    assert json.loads(done.get_body())["outcome"] == "remediated"


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not JSON"),
    ({"resourceId": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/s"},
     "resourceId"),
    ([], "empty"),
    ({"resourceId": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
                    "Microsoft.ContainerInstance/containerGroups/cg", "dryRun": "yes"}, "dryRun"),
])
def test_replay_rejects_bad_input_in_one_line(world: World, body: Any, message: str) -> None:
    resp = fn("replay")(http("POST", "replay", body=body), Out())
    assert resp.status_code == 400
    error = json.loads(resp.get_body())["error"]
    assert message.lower() in error.lower() and "\n" not in error


def test_event_that_is_not_ours_queues_nothing_and_is_recorded_as_skipped(world: World) -> None:
    event = world.fail()
    success = {**event, "eventType": "Microsoft.Resources.ResourceWriteSuccess", "id": str(uuid.uuid4())}
    jobs = Out()
    fn("on_resource_write_failure")(grid_event(success), jobs)
    assert jobs.values == []
    assert [r["outcome"] for r in world.service.ledger.reports_for(event["subject"])] == ["skipped"]


def test_health_is_anonymous_and_says_nothing_secret(world: World) -> None:
    resp = fn("health_check")(http("GET", "health"))
    assert resp.status_code == 200 and json.loads(resp.get_body())["status"] == "ok"
    assert str(bindings("health_check")[0]["authLevel"]).lower().endswith("anonymous")
    assert "function" in str(bindings("replay")[0].get("authLevel", "function")).lower()
    calls_before = len(world.sb.world.request_log)
    fn("health_check")(http("GET", "health"))
    assert len(world.sb.world.request_log) == calls_before


def test_list_without_resource_id_is_a_400(world: World) -> None:
    resp = fn("list_remediations")(http("GET", "remediations"))
    assert resp.status_code == 400


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def posted(r: Receiver) -> list[tuple[str, dict[str, Any]]]:
    return [(req.path, json.loads(req.body)) for req in r.requests]


def test_summaries_go_to_teams_and_slack_and_the_report_says_so(azurite: Any, receiver: Receiver) -> None:
    scenario = load_scenario(DEFAULT)
    with Sandbox(scenario) as sb:
        settings = demo_settings(sb, scenario).with_overrides({
            "TEAMS_WEBHOOK_URL": f"{receiver.base}/teams", "SLACK_WEBHOOK_URL": f"{receiver.base}/slack",
            "REMEDIATION_REDEPLOY_BUDGET_SECONDS": "30"})
        engine = engine_for(sb, scenario, settings)
        ledger = Ledger.from_connection_string(azurite.connection_string, table_name=f"t{uuid.uuid4().hex[:12]}")
        set_service(Service.assemble(settings, engine.clients, ledger, gather_options=engine.gather_options,
                                     redeploy_options=engine.redeploy_options))
        try:
            w = World(sb, scenario, function_app_service())
            event = w.fail()
            run_event(w, event)
            report = ledger.reports_for(event["subject"])[0]
        finally:
            set_service(None)
    statuses = {n["channel"]: n["status"] for n in report["notifications"]}
    assert statuses == {"teams": "sent", "slack": "sent", "webhook": "disabled", "eventgrid": "disabled"}
    paths = sorted(p for p, _ in posted(receiver))
    assert paths == ["/slack", "/teams"]
    teams = next(b for p, b in posted(receiver) if p == "/teams")
    assert teams["type"] == "message"
    assert teams["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert receiver.base not in json.dumps(report)


def function_app_service() -> Service:
    from remediation.service import get_service

    return get_service()


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
    fn("sweep")(None)
    reports = world.service.ledger.reports_for(world.scenario.failed_write["resourceId"])
    assert [r["trigger"] for r in reports] == ["sweep"]
    assert [c["code"] for c in reports[0]["causes"]] == ["ACR_PULL_PERMISSION_MISSING"]
    kinds = [w.path.split("/providers/")[-1].split("/")[1] for w in world.remediator_writes()]
    assert kinds == ["roleAssignments"]  # fixed, and the running group was not restarted


@pytest.mark.scenario("scenarios/healthy.json")
def test_sweep_is_off_by_default(world: World) -> None:
    fn("sweep")(None)
    assert [r for r in world.sb.world.request_log if r.caller == world.sb.world.remediator] == []


def test_a_definition_sent_with_a_replay_is_diagnosed_but_drives_no_write(world: World) -> None:
    event = world.fail()
    body = json.loads(json.dumps(world.scenario.failed_write["body"]))
    body["properties"]["containers"][0]["properties"]["command"] = ["/bin/sh", "-c", "anything at all"]
    resp = fn("replay")(http("POST", "replay", body={"resourceId": event["subject"], "definition": body}), Out())
    report = json.loads(resp.get_body())
    assert [c["code"] for c in report["causes"]] == ["ACR_PULL_PERMISSION_MISSING"]
    assert report["outcome"] == "diagnosed"
    assert all(a["status"] == "skipped" and "REMEDIATION_REDEPLOY_REPLAYED_DEFINITIONS" in a["detail"]
               for a in report["actions"] if a["kind"] in ("assign-role", "redeploy"))
    assert world.remediator_writes() == []  # the caller's word is not Azure's: nothing is written


def test_purge_keeps_recent_reports(world: World) -> None:
    event = world.fail()
    run_event(world, event)
    fn("purge_ledger")(None)
    assert [r["outcome"] for r in world.service.ledger.reports_for(event["subject"])] == ["remediated"]


def test_a_cloud_events_subscription_is_handled_too(world: World) -> None:
    event = world.fail()
    cloud = func.CloudEvent(id=event["id"], source=event["topic"], type=event["eventType"], specversion="1.0",
                            subject=event["subject"], data=event["data"],
                            time=datetime.fromisoformat(event["eventTime"][:26] + "+00:00"))
    jobs = Out()
    fn("on_resource_write_failure")(cloud, jobs)
    assert len(jobs.values) == 1
    fn("run_remediation_job")(func.QueueMessage(body=jobs.get().encode()))
    assert [r["outcome"] for r in world.service.ledger.reports_for(event["subject"])] == ["remediated"]


def test_an_unexpected_error_releases_the_claim_and_the_redelivery_finishes(world: World) -> None:
    event = world.fail()
    jobs = Out()
    fn("on_resource_write_failure")(grid_event(event), jobs)
    ledger = world.service.ledger
    original = ledger.record_attempt

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("table storage hiccup")

    ledger.record_attempt = broken  # type: ignore[method-assign]
    with pytest.raises(Exception, match="broke off"):
        fn("run_remediation_job")(func.QueueMessage(body=jobs.get().encode()))
    ledger.record_attempt = original  # type: ignore[method-assign]
    assert ledger.reports_for(event["subject"]) == []
    fn("run_remediation_job")(func.QueueMessage(body=jobs.get().encode()))  # the queue delivers it again
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


def test_two_failures_of_one_group_are_not_remediated_at_once(world: World) -> None:
    event = world.fail()
    assert user_write(world.sb, world.scenario) is not None  # the user tries again: another failed write
    dispatcher(world.sb.world).wait_idle()
    second = [e for e in world.events if "/containergroups/" in e["subject"].lower()][1]
    assert second["data"]["correlationId"] != event["data"]["correlationId"]
    service = world.service
    assert service.ledger.lease(event["subject"], "someone-else")  # a run of the first failure is going on
    with pytest.raises(Exception, match="another remediation"):
        service.process_job({"kind": "event", "event": second, "trigger": "eventgrid"}, dequeue_count=1)
    assert world.remediator_writes() == []
    service.ledger.release_lease(event["subject"], "someone-else")
    [report] = service.process_job({"kind": "event", "event": second, "trigger": "eventgrid"}, dequeue_count=2)
    assert report["outcome"] == "remediated"
