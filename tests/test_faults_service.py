"""Faults that involve the ledger, the jobs queue and redeliveries (issue 9, item 6): the function app
under the genuine Python worker, against the sandbox and a real Azurite (``tests/app.py``), each
with its expected result asserted. Engine-only faults are in ``tests/test_faults.py``."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from remediation import engine as engine_module
from remediation.azure import redeploy as redeploy_module
from remediation.azure.clients import AzureClients
from remediation.demo import user_write
from remediation.ledger import Ledger
from remediation.service import Service, set_service
from sandbox.eventgrid import dispatcher
from tests.app import World
from tests.azurite import AzuriteInstance
from tests.worlds import IDENTITY_PRINCIPAL

KELVIN_ID = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/myResourceGroup\u212a/providers/"
             "Microsoft.ContainerInstance/containerGroups/acrtestcontainergroup")


def writes(world: World) -> list[str]:
    """The app's answered writes, as ``METHOD resourceType``."""
    return [f"{r.method} {r.path.rstrip('/').split('/')[-2]}" for r in world.remediator_writes()
            if 200 <= r.status < 300]


def reports(world: World, resource_id: str) -> list[dict[str, Any]]:
    return world.service.ledger.reports_for(resource_id)


@contextmanager
def service_with(world: World, *, clients: AzureClients | None = None,
                 ledger: Ledger | None = None) -> Iterator[Service]:
    """The world's service with other SDK clients or another ledger, as the function app's service."""
    old = world.service
    service = Service.assemble(old.settings, clients or old.clients, ledger or old.ledger,
                               gather_options=old.gather_options, redeploy_options=old.redeploy_options,
                               jobs=old.jobs)
    set_service(service)
    world.service = service
    try:
        yield service
    finally:
        set_service(old)
        world.service = old
        if clients is not None:
            clients.close()


def quick_clients(world: World, **options: Any) -> AzureClients:
    sb = world.sb
    return AzureClients(sb.remediator_credential(), arm_endpoint=sb.arm_endpoint, verify=sb.ca_bundle,
                        polling_interval=0.05, **options,
                        registry_endpoint_template=world.service.clients.registry_endpoint_template)


def invoke_next(world: World) -> Any:
    """The host's queue listener, once: the next job is run; a failed one becomes visible again."""
    from tests.host import queue_delivery

    [message] = world.queue.receive_messages(max_messages=1, visibility_timeout=60)
    data, metadata = queue_delivery(message.content, dequeue_count=message.dequeue_count, message_id=message.id)
    result = world.host.invoke("run_remediation_job", {"msg": data}, trigger_metadata=metadata)
    if result.ok:
        world.queue.delete_message(message)
    else:
        world.queue.update_message(message, visibility_timeout=0)
    return result


class Crash(BaseException):
    """A worker dying mid-run: nothing is cleaned up, nothing is reported."""


# --- a fault that outlasts the SDK's retries: the event is not acknowledged, the redelivery finishes --

def test_a_write_that_keeps_failing_is_not_acknowledged_and_the_redelivery_finishes(world: World) -> None:
    event = world.fail()
    world.sb.world.behaviour["faults"] = [{"match": "PUT */roleassignments/*", "status": 503, "times": 2}]
    with service_with(world, clients=quick_clients(world, retry_total=1)):
        world.deliver(event)
        [first, second] = world.drain()
    assert not first.ok and "ServiceUnavailable" in first.error  # the function raised: the queue redelivers
    assert second.ok
    assert writes(world) == ["PUT roleAssignments", "PUT containerGroups"]
    assert [r["outcome"] for r in reports(world, event["subject"])] == ["remediated"]


# --- the Activity Log entry never appearing --------------------------------------------------------

def test_an_activity_log_entry_that_never_appears_ends_in_a_stored_failed_report(world: World) -> None:
    world.sb.world.behaviour["activityLogLagSeconds"] = 10**7
    world.service.gather_options.activity_log_wait_seconds = 0  # each delivery gives up at once
    event = world.fail()
    world.deliver(event)
    results = world.drain()
    max_dequeue = world.service.max_dequeue
    assert [r.ok for r in results] == [False] * (max_dequeue - 1) + [True]  # retried, then given up
    [report] = reports(world, event["subject"])
    assert report["outcome"] == "failed" and "not in the Activity Log yet" in report["error"]
    assert writes(world) == []


# --- Azurite down or slow ----------------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_with_azurite_down_nothing_is_written_and_the_event_is_not_acknowledged(world: World,
                                                                                 azurite: AzuriteInstance) -> None:
    event = world.fail()
    world.deliver(event)  # queued while storage was up
    port = azurite.connection_string.split("TableEndpoint=http://127.0.0.1:")[1].split("/")[0]
    down = azurite.connection_string.replace(f"127.0.0.1:{port}", f"127.0.0.1:{_closed_port()}")
    ledger = Ledger(TableServiceClient.from_connection_string(down, retry_total=0), None,
                    table_name=f"t{uuid.uuid4().hex[:12]}")
    with service_with(world, ledger=ledger):
        result = invoke_next(world)
        assert not result.ok  # the function raised: the message goes back to the queue
        assert writes(world) == []  # no Azure write without a claim
        not_ours = {**event, "eventType": "Microsoft.Resources.ResourceWriteSuccess"}
        delivered = world.host.invoke("on_resource_write_failure", {"event": _delivery(not_ours)})
        assert not delivered.ok  # Event Grid gets no success, so it delivers again
    assert all(r.ok for r in world.drain())  # storage is back: the redelivery finishes
    assert writes(world) == ["PUT roleAssignments", "PUT containerGroups"]


def _delivery(event: dict[str, Any]) -> Any:
    from tests.host import event_grid_delivery

    return event_grid_delivery(event)


def test_with_azurite_slow_the_claim_still_comes_before_any_write(world: World) -> None:
    event = world.fail()
    ledger = world.service.ledger
    claimed_at: list[float] = []
    original = ledger.claim

    def slow_claim(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.0)
        claim = original(*args, **kwargs)
        claimed_at.append(time.time())
        return claim

    ledger.claim = slow_claim  # type: ignore[method-assign]
    try:
        world.deliver(event)
        assert all(r.ok for r in world.drain())
    finally:
        ledger.claim = original  # type: ignore[method-assign]
    first_write = min(r.started for r in world.remediator_writes())
    assert claimed_at and claimed_at[0] <= first_write
    assert writes(world) == ["PUT roleAssignments", "PUT containerGroups"]


# --- the process killed after the claim, after the fix, during the redeploy --------------------------

@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_CLAIM_TTL_SECONDS": "1"})
def test_a_crash_right_after_the_claim_is_finished_by_the_redelivery(world: World, monkeypatch: pytest.MonkeyPatch
                                                                      ) -> None:
    event = world.fail()

    def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise Crash()

    monkeypatch.setattr(engine_module.Engine, "run", crash)
    world.deliver(event)
    with pytest.raises(Crash):
        world.drain()
    monkeypatch.undo()
    assert writes(world) == [] and reports(world, event["subject"]) == []
    time.sleep(1.2)  # the dead worker's claim expires
    world.deliver(event)  # Event Grid delivers again: no answer came
    assert all(r.ok for r in world.drain())
    assert writes(world) == ["PUT roleAssignments", "PUT containerGroups"]
    assert [r["outcome"] for r in reports(world, event["subject"])] == ["remediated"]


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_CLAIM_TTL_SECONDS": "1"})
def test_a_crash_after_the_fix_is_finished_by_the_redelivery_without_a_second_grant(world: World) -> None:
    event = world.fail()
    ledger = world.service.ledger
    original = ledger.mark

    def crash_after_marking(claim: Any, stage: str) -> Any:
        original(claim, stage)
        raise Crash()

    ledger.mark = crash_after_marking  # type: ignore[method-assign]
    world.deliver(event)
    with pytest.raises(Crash):
        world.drain()
    ledger.mark = original  # type: ignore[method-assign]
    assert writes(world) == ["PUT roleAssignments"]
    time.sleep(1.2)
    world.deliver(event)
    assert all(r.ok for r in world.drain())
    assert writes(world) == ["PUT roleAssignments", "PUT containerGroups"]
    assert [r["outcome"] for r in reports(world, event["subject"])] == ["remediated"]


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_CLAIM_TTL_SECONDS": "1"})
def test_a_crash_during_the_redeploy_is_finished_by_the_redelivery_without_a_second_write(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    event = world.fail()

    def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise Crash()  # the group PUT was accepted and completed; the worker died verifying it

    monkeypatch.setattr(redeploy_module, "_events_ok", crash)
    world.deliver(event)
    with pytest.raises(Crash):
        world.drain()
    monkeypatch.undo()
    assert writes(world) == ["PUT roleAssignments", "PUT containerGroups"]
    time.sleep(1.2)
    world.deliver(event)
    assert all(r.ok for r in world.drain())
    assert writes(world) == ["PUT roleAssignments", "PUT containerGroups"]  # nothing written twice
    found = reports(world, event["subject"])  # the dead worker's message and the redelivery both ran
    assert found and all("already runs these images" in (r.get("skipReason") or "") or r["outcome"] == "remediated"
                         for r in found)


# --- the app's own failed redeploy raising a new event ---------------------------------------------

@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_REDEPLOY_BUDGET_SECONDS": "0"})
def test_the_apps_own_failed_redeploy_raises_no_loop_and_attempts_are_capped(world: World) -> None:
    # the grant the app makes never takes effect, and something (an admin, a policy) keeps removing it,
    # so every failure of the user's deployment finds the same cause and every redeploy fails
    sandbox = world.sb.world
    sandbox.behaviour["rbacPropagationSeconds"] = 10**7
    max_attempts = world.service.settings.max_attempts
    for attempt in range(max_attempts + 1):
        event = world.fail() if attempt == 0 else _next_failure(world)
        run_one(world, event)
        own = [e for e in world.events if (e["data"]["claims"] or {}).get(OID) == sandbox.remediator]
        for mine in own:  # each failure of the app's own redeploy comes back as an event
            run_one(world, mine)
        world.events[:] = [e for e in world.events if e not in own]
        for grant in sandbox.role_assignments():
            if grant["properties"]["principalId"] == IDENTITY_PRINCIPAL:
                sandbox.delete(grant["id"])
    history = reports(world, event["subject"])  # newest first
    assert writes(world) == ["PUT roleAssignments"] * max_attempts  # no redeploy ever succeeded
    own_runs = [r for r in history if "(loop guard)" in (r.get("skipReason") or "")]
    assert len(own_runs) == max_attempts and all(r["actions"] == [] for r in own_runs)  # no loop
    [last] = [r for r in history if r["correlationId"] == event["data"]["correlationId"]]
    assert last["outcome"] == "diagnosed"
    capped = f"skipped: {max_attempts} attempts in the last 60 minutes (REMEDIATION_MAX_ATTEMPTS={max_attempts})"
    assert all(capped in a["detail"] for a in last["actions"] if a["kind"] in ("assign-role", "redeploy")), last


OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def _next_failure(world: World) -> dict[str, Any]:
    seen = {e["data"]["correlationId"] for e in world.events}
    assert user_write(world.sb, world.scenario) is not None  # the user tries again
    dispatcher(world.sb.world).wait_idle()
    return next(e for e in world.events if e["data"]["correlationId"] not in seen
                and "/containergroups/" in e["subject"].lower())


def run_one(world: World, event: dict[str, Any]) -> None:
    world.deliver(event)
    world.drain()


# --- a resource id with a non-ASCII character ------------------------------------------------------

def test_a_kelvin_sign_resource_id_is_refused_by_replay_and_by_the_event_trigger(world: World) -> None:
    status, answer = world.http("replay", "POST", "replay", body={"resourceId": KELVIN_ID})
    assert status == 400 and "U+212A" in answer["error"] and "\n" not in answer["error"]
    event = world.fail()
    lookalike = {**event, "subject": KELVIN_ID, "data": {**event["data"], "resourceUri": KELVIN_ID}}
    delivered = world.host.invoke("on_resource_write_failure", {"event": _delivery(lookalike)})
    assert delivered.ok and delivered.output("jobs") is None  # dropped as malformed: nothing queued
    assert world.remediator_writes() == [] and world.queue.peek_messages() == []

