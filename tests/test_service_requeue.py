"""A job whose failure (or group) another run holds waits for it: soon at first, then longer, never
past the holder's expiry, and long enough in all to outlast a live holder's run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from remediation.service import DEFAULT_MAX_REQUEUES, requeue_delay
from remediation.settings import Settings
from tests.app import World
from tests.host import queue_delivery

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_first_wait_is_short_and_each_one_doubles() -> None:
    far = NOW + timedelta(seconds=180)
    assert [requeue_delay(n, far, NOW) for n in range(8)] == [2, 4, 8, 16, 32, 64, 128, 183]


def test_no_wait_goes_past_the_holders_expiry() -> None:
    # a crashed holder's claim expires in 5 s: the job comes back just past that, however often it waited
    assert [requeue_delay(n, NOW + timedelta(seconds=5), NOW) for n in range(4)] == [2, 4, 8, 8]
    assert requeue_delay(9, NOW - timedelta(seconds=30), NOW) == 2  # already expired: back in a moment


def test_the_waits_of_a_job_outlast_a_live_holders_run_and_its_claim() -> None:
    defaults = Settings()
    ttl = defaults.claim_ttl_seconds
    # the shortest a live holder's expiry can be seen: it renews once half its claim's TTL is left
    live = NOW + timedelta(seconds=ttl / 2)
    waited = sum(requeue_delay(n, live, NOW) for n in range(DEFAULT_MAX_REQUEUES))
    assert waited > defaults.redeploy_budget_seconds + defaults.activity_log_wait_seconds
    assert waited >= 10 * ttl / 2  # as long as the ten waits until the holder's expiry it replaced
    # a crashed holder (its expiry a whole TTL away at first) is outlasted well before the last wait
    dead = NOW + timedelta(seconds=ttl)
    elapsed, at = 0, NOW
    for n in range(DEFAULT_MAX_REQUEUES):
        step = requeue_delay(n, dead, at)
        elapsed, at = elapsed + step, at + timedelta(seconds=step)
        if at > dead:
            break
    assert at > dead and n < DEFAULT_MAX_REQUEUES - 1


def _invoke_one(world: World) -> Any:
    [message] = world.queue.receive_messages(max_messages=1, visibility_timeout=60)
    data, metadata = queue_delivery(message.content, dequeue_count=message.dequeue_count)
    result = world.host.invoke("run_remediation_job", {"msg": data}, trigger_metadata=metadata)
    assert result.ok, result.error
    world.queue.delete_message(message)
    return result


def test_a_duplicate_that_arrives_while_its_failure_runs_comes_back_soon_and_runs_if_that_run_gave_up(
        world: World) -> None:
    """The holder's claim is far from expiring (default TTL, 180 s); it ends without finishing the
    remediation (a skipped or failed run gives the claim back): the waiting duplicate is the next
    delivery, and it remediates within seconds, not after the holder's expiry."""
    event = world.fail()
    ledger = world.service.ledger
    holder = ledger.claim(event["subject"], event["data"]["correlationId"], owner="a-run-going-on")
    assert holder is not None and holder.expires_at - datetime.now(UTC) > timedelta(seconds=100)
    world.deliver(event)
    _invoke_one(world)  # busy: re-enqueued
    assert ledger.reports_for(event["subject"]) == []
    assert ledger.abandon(holder)  # the holder ended skipped or failed: the failure is open again
    results = world.drain(wait=10.0)  # far less than the holder's 180 s
    assert [r.ok for r in results] == [True]
    assert [r["outcome"] for r in ledger.reports_for(event["subject"])] == ["remediated"]


def test_a_duplicate_that_comes_back_after_its_failure_finished_is_skipped_without_a_report(world: World) -> None:
    event = world.fail()
    ledger = world.service.ledger
    holder = ledger.claim(event["subject"], event["data"]["correlationId"], owner="a-run-going-on")
    assert holder is not None
    world.deliver(event)
    _invoke_one(world)  # busy: re-enqueued
    ledger.complete(holder, {"resourceId": event["subject"], "correlationId": event["data"]["correlationId"],
                             "outcome": "remediated", "startedAt": datetime.now(UTC).isoformat()})
    assert [r.ok for r in world.drain(wait=10.0)] == [True]
    assert [r["outcome"] for r in ledger.reports_for(event["subject"])] == ["remediated"]  # the holder's only
    assert world.remediator_writes() == []
