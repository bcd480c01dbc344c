"""The durable ledger against a real Azurite: claims, leases, a run's journal, attempts, cool-downs,
reports, purge, snapshots.

Concurrency tests give every thread its own Ledger (its own clients), as separate function-app
instances would have, all on one fresh table, so the table's creation on first use races too.
"""

from __future__ import annotations

import json
import random
import re
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from remediation.journal import Held, NoJournal
from remediation.ledger import Claim, ClaimLost, Ledger, LedgerError, LedgerJournal, resource_hash
from remediation.ledger.coordination import FinishedClaims
from remediation.model import FailureSignal, Finding
from remediation.report import build_report

from . import azurite as azurite_helper
from .azurite import AzuriteInstance

RG = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
GROUP = f"{RG}/providers/Microsoft.ContainerInstance/containerGroups/app"
OTHER = f"{RG}/providers/Microsoft.ContainerInstance/containerGroups/other"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")


class Store:
    """One test's own table and container in the session's Azurite, and ledgers on them."""

    def __init__(self, azurite: AzuriteInstance) -> None:
        self.conn = azurite.connection_string
        self.table_name = "L" + uuid.uuid4().hex[:16]
        self.container = "r-" + uuid.uuid4().hex[:16]
        self.opened: list[Ledger] = []

    def ledger(self, **options: Any) -> Ledger:
        options = {"table_name": self.table_name, "reports_container": self.container, **options}
        ledger = Ledger.from_connection_string(self.conn, **options)
        self.opened.append(ledger)
        return ledger

    def rows(self, partition_prefix: str) -> list[dict[str, Any]]:
        table = TableServiceClient.from_connection_string(self.conn).get_table_client(self.table_name)
        return [dict(e) for e in table.list_entities() if str(e["PartitionKey"]).startswith(partition_prefix)]

    def blob_names(self) -> list[str]:
        container = BlobServiceClient.from_connection_string(self.conn).get_container_client(self.container)
        return sorted(b.name for b in container.list_blobs())


@pytest.fixture
def store(azurite: AzuriteInstance) -> Iterator[Store]:
    s = Store(azurite)
    yield s
    for ledger in s.opened:
        ledger.close()


def concurrently(count: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` for i in range(count) on as many threads, released together."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T:
        barrier.wait(timeout=10)
        return work(i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def report(
    resource_id: str = GROUP, correlation: str = "corr-1", started: datetime = T0, **extra: Any
) -> dict[str, Any]:
    """A contract report of one run; ``extra`` goes into the cause's evidence (to make it larger)."""
    finding = Finding("ACR_PULL_PERMISSION_MISSING", "no AcrPull", {"principalId": "p-1", **extra}, fixable=True)
    return build_report(
        resource_id=resource_id, trigger="eventgrid", correlation_id=correlation, error_code="InaccessibleImage",
        findings=[finding], started_at=started, finished_at=started + timedelta(seconds=7),
    )


# --- claims ----------------------------------------------------------------------------------------


def test_twenty_concurrent_claims_of_one_failure_have_exactly_one_winner(store: Store) -> None:
    ledgers = [store.ledger() for _ in range(20)]
    claims = concurrently(20, lambda i: ledgers[i].claim(GROUP, "corr-1", owner=f"instance-{i}", now=T0))

    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    [row] = store.rows("claim-")
    assert row["Owner"] == winners[0].owner and row["Status"] == "running"
    assert winners[0].expires_at == T0 + timedelta(minutes=15)


class _TableCalls:
    """Counts what a ledger asks of its table, by operation."""

    OPERATIONS = ("get_entity", "create_entity", "update_entity", "upsert_entity", "delete_entity", "query_entities")

    def __init__(self, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        table = ledger._tables()
        for name in self.OPERATIONS:
            monkeypatch.setattr(table, name, self._counted(name, getattr(table, name)))

    def _counted(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)
        return counted


def test_a_duplicate_of_a_finished_failure_costs_one_table_read_and_no_write(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    first = store.ledger()
    claim = first.claim(GROUP, "corr-1", owner="a", now=T0)
    assert claim is not None
    report_id = first.complete(claim, report())
    other = store.ledger()  # another instance: it never saw the run finish
    calls = _TableCalls(other, monkeypatch)
    held = other.claim_or_held(GROUP, "corr-1", owner="b", now=T0 + timedelta(minutes=1))
    assert held == Held(None, report_id)
    assert calls.calls == ["get_entity"]


def test_a_duplicate_of_a_failure_this_instance_finished_costs_no_table_call(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = store.ledger()
    claim = ledger.claim_or_held(GROUP, "corr-1", owner="a", now=T0)
    assert isinstance(claim, Claim)
    report_id = ledger.complete(claim, report())
    other = store.ledger()
    assert isinstance(other.claim_or_held(GROUP, "corr-2", owner="b", now=T0), Claim)  # running elsewhere
    calls = _TableCalls(ledger, monkeypatch)
    assert ledger.claim_or_held(GROUP, "corr-1", owner="b", now=T0) == Held(None, report_id)
    assert calls.calls == []
    # a replay (force) never takes the instance's word for it, and a running claim is always read
    assert isinstance(ledger.claim_or_held(GROUP, "corr-1", owner="c", now=T0, force=True, replay=True), Claim)
    assert ledger.claim_or_held(GROUP, "corr-2", owner="c", now=T0).until is not None  # type: ignore[union-attr]
    assert calls.calls.count("get_entity") == 2


def test_the_instances_record_of_finished_claims_is_bounded_in_size_and_age() -> None:
    finished = FinishedClaims(size=3, ttl_seconds=60)
    for i in range(10):
        finished.add("p", f"r{i}", f"report-{i}")
    assert len(finished) == 3 and finished.get("p", "r0") is None and finished.get("p", "r9") == "report-9"
    stale = FinishedClaims(ttl_seconds=0)
    stale.add("p", "r", "report")
    assert stale.get("p", "r") is None and len(stale) == 0


def test_concurrent_deliveries_of_finished_and_new_failures_each_claim_once(store: Store) -> None:
    done = store.ledger()
    claim = done.claim(GROUP, "corr-done", owner="a", now=T0)
    assert claim is not None
    done.complete(claim, report())
    ledgers = [store.ledger() for _ in range(8)]
    results = concurrently(8, lambda i: [ledgers[i].claim_or_held(GROUP, key, owner=f"i-{i}", now=T0)
                                         for key in ("corr-done", "corr-new")])
    assert all(isinstance(r[0], Held) and r[0].finished for r in results)
    assert sum(isinstance(r[1], Claim) for r in results) == 1
    assert all(isinstance(r[1], Claim) or (isinstance(r[1], Held) and not r[1].finished) for r in results)


def test_a_completed_claim_is_never_claimed_again_and_keeps_its_report(store: Store) -> None:
    ledger = store.ledger()
    claim = ledger.claim(GROUP, "corr-1", owner="a", now=T0)
    assert claim is not None
    report_id = ledger.complete(claim, report())

    assert ledger.claim(GROUP, "corr-1", owner="b", now=T0 + timedelta(minutes=1)) is None
    assert ledger.claim(GROUP, "corr-1", owner="b", now=T0 + timedelta(days=2)) is None  # done outlives the TTL
    assert ledger.get_report(report_id) == {**report(), "id": report_id}
    [row] = store.rows("claim-")
    assert row["Status"] == "done" and row["ReportId"] == report_id


def test_a_running_claim_blocks_until_it_expires_then_one_of_many_takers_wins(store: Store) -> None:
    first = store.ledger().claim(GROUP, "corr-1", owner="crashed", now=T0)
    assert first is not None
    assert store.ledger().claim(GROUP, "corr-1", owner="early", now=T0 + timedelta(minutes=14)) is None

    takers = [store.ledger() for _ in range(8)]
    later = T0 + timedelta(minutes=16)
    claims = concurrently(8, lambda i: takers[i].claim(GROUP, "corr-1", owner=f"taker-{i}", now=later))

    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    winner = winners[0]
    assert winner.taken_over_from == "crashed" and winner.expires_at == later + timedelta(minutes=15)
    [row] = store.rows("claim-")
    assert row["Owner"] == winner.owner and row["Takeovers"] == 1

    # The crashed owner comes back: its report is kept, but the claim stays the new owner's.
    with pytest.raises(ClaimLost) as lost:
        store.ledger().complete(first, report(correlation="corr-1", started=T0))
    assert store.ledger().get_report(lost.value.report_id) is not None
    assert store.rows("claim-")[0]["Status"] == "running"
    store.ledger().complete(winner, report(started=later))
    assert store.rows("claim-")[0]["Status"] == "done"


def test_abandon_releases_a_claim_for_an_immediate_retake(store: Store) -> None:
    ledger = store.ledger()
    first = ledger.claim(GROUP, "corr-1", owner="a", now=T0)
    assert first is not None
    assert ledger.abandon(first) is True

    retake = ledger.claim(GROUP, "corr-1", owner="b", now=T0 + timedelta(seconds=5))
    assert retake is not None and retake.taken_over_from == "a"
    assert ledger.abandon(first) is False  # a stale claim cannot release the new owner's
    assert ledger.claim(GROUP, "corr-1", owner="c", now=T0 + timedelta(seconds=6)) is None


def test_claim_ttl_is_configurable(store: Store) -> None:
    ledger = store.ledger(claim_ttl=timedelta(seconds=30))
    assert ledger.claim(GROUP, "corr-1", owner="a", now=T0) is not None
    assert ledger.claim(GROUP, "corr-1", owner="b", now=T0 + timedelta(seconds=29)) is None
    assert ledger.claim(GROUP, "corr-1", owner="b", now=T0 + timedelta(seconds=31)) is not None


def test_claim_keys_resource_case_insensitively_and_fall_back_to_the_event_id(store: Store) -> None:
    ledger = store.ledger()
    assert ledger.claim(GROUP, "ABC-1", owner="a", now=T0) is not None
    assert ledger.claim(GROUP.upper(), "abc-1", owner="b", now=T0) is None
    assert ledger.claim(OTHER, "ABC-1", owner="b", now=T0) is not None  # another group, its own claim
    assert ledger.claim(GROUP, "abc-2", owner="b", now=T0) is not None  # another failure of the same group

    by_event = ledger.claim(GROUP, None, owner="a", event_id="evt-9", now=T0)
    assert isinstance(by_event, Claim) and by_event.key == "evt-9"
    assert ledger.claim(GROUP, None, owner="b", event_id="evt-9", now=T0) is None

    odd = "a/b#c?d\\e"  # characters a RowKey may not hold
    assert ledger.claim(GROUP, odd, owner="a", now=T0) is not None
    assert ledger.claim(GROUP, odd, owner="b", now=T0) is None
    with pytest.raises(ValueError, match="correlation id or an event id"):
        ledger.claim(GROUP, None, owner="a", now=T0)


# --- leases ------------------------------------------------------------------------------------------


def test_a_lease_has_one_holder_until_it_expires_or_is_given_up(store: Store) -> None:
    ledgers = [store.ledger() for _ in range(8)]
    taken = concurrently(8, lambda i: ledgers[i].lease(GROUP, f"run-{i}", now=T0))
    assert taken.count(True) == 1
    holder = f"run-{taken.index(True)}"
    ledger = ledgers[0]
    assert ledger.lease(GROUP, "other", now=T0 + timedelta(minutes=1)) is False
    assert ledger.lease(OTHER, "other", now=T0) is True  # leases are per group
    assert ledger.lease(GROUP, holder, now=T0 + timedelta(minutes=10)) is True  # renewed by its holder
    assert ledger.lease(GROUP, "other", now=T0 + timedelta(minutes=16)) is False  # the renewal counts
    assert ledger.lease(GROUP, "other", now=T0 + timedelta(minutes=26)) is True  # expired: taken over
    ledger.release_lease(GROUP, holder)  # no longer its lease: nothing happens
    assert ledger.lease(GROUP, "third", now=T0 + timedelta(minutes=27)) is False
    ledger.release_lease(GROUP, "other")
    assert ledger.lease(GROUP, "third", now=T0 + timedelta(minutes=27)) is True


# --- a run's journal ---------------------------------------------------------------------------------

SIGNAL = FailureSignal(GROUP, "00000000-0000-0000-0000-000000000001", "rg", "app", correlation_id="corr-1")


def test_a_journal_holds_its_runs_claim_and_lease_and_renews_both_at_half_life(store: Store) -> None:
    ledger = store.ledger(claim_ttl=timedelta(seconds=1))
    journal = LedgerJournal(ledger, owner="a", attempt_window_minutes=60)
    assert journal.claim(SIGNAL) is None and journal.lease() is None
    assert not journal.resumes_after_fix
    [claim], [lease] = store.rows("claim-"), store.rows("lease-")
    journal.heartbeat()  # a fresh claim needs no renewal
    assert store.rows("claim-")[0]["ExpiresAt"] == claim["ExpiresAt"]
    time.sleep(0.6)  # past half the TTL
    journal.heartbeat()
    assert store.rows("claim-")[0]["ExpiresAt"] > claim["ExpiresAt"]
    assert store.rows("lease-")[0]["ExpiresAt"] > lease["ExpiresAt"]
    held = LedgerJournal(ledger, owner="b", attempt_window_minutes=60).claim(SIGNAL)
    assert held is not None and not held.finished

    journal.checkpoint("fixed")  # with the claim as renewed: its ETag changed
    assert store.rows("claim-")[0]["Stage"] == "fixed"
    journal.record_attempt(GROUP)
    assert journal.attempts_in_window(GROUP) == 1
    journal.redeployed(GROUP, {"location": "eastus"})
    assert ledger.last_snapshot(GROUP) == {"location": "eastus"}
    report_id = journal.complete(report())
    [done] = store.rows("claim-")
    assert done["Status"] == "done" and done["ReportId"] == report_id
    assert ledger.get_report(report_id) is not None
    journal.close()
    assert store.rows("lease-") == []


def test_a_journal_resumes_a_run_that_died_after_its_fixes_and_can_give_the_claim_back(store: Store) -> None:
    ledger = store.ledger()
    dead = ledger.claim(GROUP, "corr-1", owner="dead", now=T0)
    assert dead is not None
    ledger.mark(dead, "fixed", now=T0)  # then the worker died; its claim expired long ago
    journal = LedgerJournal(ledger, owner="b", attempt_window_minutes=60)
    assert journal.claim(SIGNAL) is None and journal.lease() is None and journal.resumes_after_fix
    journal.release()
    journal.close()
    assert store.rows("claim-")[0]["Status"] == "released"
    assert LedgerJournal(ledger, owner="c", attempt_window_minutes=60).claim(SIGNAL) is None  # at once


def test_a_journal_whose_claim_was_taken_over_still_stores_its_report(store: Store) -> None:
    ledger = store.ledger()
    journal = LedgerJournal(ledger, owner="slow", attempt_window_minutes=60)
    assert journal.claim(SIGNAL) is None
    taker = ledger.claim(GROUP, "corr-1", owner="taker", now=datetime.now(UTC) + timedelta(minutes=16))
    assert taker is not None
    with pytest.raises(ClaimLost):
        journal.checkpoint("fixed")
    report_id = journal.complete(report())
    assert ledger.get_report(report_id) is not None
    [row] = store.rows("claim-")
    assert row["Owner"] == "taker" and row["Status"] == "running"


def test_a_journal_without_a_claim_counts_attempts_and_stores_the_report(store: Store) -> None:
    ledger = store.ledger()
    ledger.record_attempt(GROUP)
    journal = LedgerJournal(ledger, owner="dry-run", attempt_window_minutes=60)
    assert journal.attempts_in_window(GROUP) == 1  # a dry run shows the gate's real answer
    journal.heartbeat()
    journal.checkpoint("fixed")
    report_id = journal.complete(report())
    assert ledger.get_report(report_id) is not None
    assert store.rows("claim-") == [] and store.rows("lease-") == []
    with pytest.raises(RuntimeError, match="after claiming"):
        journal.lease()


@pytest.mark.parametrize("outcome, closes", [
    ("remediated", True), ("fixed-awaiting-redeploy", True), ("diagnosed", True),
    ("skipped", False), ("failed", False), ("dry-run", False),
])
def test_only_a_run_that_finished_the_remediation_closes_its_claim(store: Store, outcome: str, closes: bool) -> None:
    """A skipped or failed run (a forged replay, an event read too early, the loop guard) never
    makes the next delivery of the same failure a duplicate."""
    ledger = store.ledger()
    claim = ledger.claim(GROUP, "corr-1", owner="a", now=T0)
    assert claim is not None
    report_id = ledger.complete(claim, {**report(), "outcome": outcome}, now=T0)
    assert ledger.get_report(report_id) is not None  # stored either way
    [row] = store.rows("claim-")
    assert row["Status"] == ("done" if closes else "released")
    later = ledger.claim(GROUP, "corr-1", owner="b", now=T0 + timedelta(seconds=1))
    if closes:
        assert later is None
        held = ledger.claim_held(GROUP, "corr-1", now=T0 + timedelta(seconds=1))
        assert held is not None and held.finished and held.report_id == report_id
    else:
        assert later is not None and later.taken_over_from == "a"


def test_a_replay_claims_apart_from_the_deliveries_of_the_same_failure(store: Store) -> None:
    ledger = store.ledger()
    replayed = ledger.claim(GROUP, "corr-1", owner="replay", now=T0, force=True, replay=True)
    assert replayed is not None
    # the delivery is not held up by a running replay, nor made a duplicate by a finished one
    delivered = ledger.claim(GROUP, "corr-1", owner="eventgrid", now=T0)
    assert delivered is not None
    ledger.complete(replayed, {**report(), "outcome": "remediated"}, now=T0)
    assert ledger.claim_held(GROUP, "corr-1", now=T0) == Held(T0 + timedelta(minutes=15))
    ledger.complete(delivered, {**report(), "outcome": "remediated"}, now=T0)
    again = ledger.claim(GROUP, "corr-1", owner="replay-2", now=T0, force=True, replay=True)
    assert again is not None  # a person may replay a finished failure
    assert ledger.claim(GROUP, "corr-1", owner="replay-3", now=T0, force=True, replay=True) is None
    assert ledger.claim_held(GROUP, "corr-1", now=T0, force=True, replay=True) == Held(T0 + timedelta(minutes=15))
    assert sorted(r["RowKey"] for r in store.rows("claim-")) == ["corr-1", "replay|corr-1"]


def test_lease_held_says_until_when_another_run_holds_the_group(store: Store) -> None:
    ledger = store.ledger()
    assert ledger.lease_held(GROUP, now=T0) is None
    assert ledger.lease(GROUP, "run-1", now=T0)
    assert ledger.lease_held(GROUP, now=T0 + timedelta(minutes=1)) == Held(T0 + timedelta(minutes=15))
    assert ledger.lease_held(GROUP, now=T0 + timedelta(minutes=16)) is None  # expired: free to take


def test_a_fix_a_crashed_delivery_left_is_resumed_by_a_replay_and_not_redeployed_again(store: Store) -> None:
    ledger = store.ledger()
    dead = ledger.claim(GROUP, "corr-1", owner="dead", now=T0)
    assert dead is not None
    ledger.mark(dead, "fixed", now=T0)  # the delivery's run died between its fixes and its redeploy
    assert ledger.fix_pending(GROUP, "corr-1")
    replay = LedgerJournal(ledger, owner="replay", attempt_window_minutes=60)
    assert replay.claim(SIGNAL, replay=True) is None and replay.lease() is None
    assert replay.resumes_after_fix  # it owes the redeploy the dead run did not make
    replay.redeployed(GROUP, {"location": "eastus"})
    replay.complete({**report(), "outcome": "remediated"})
    replay.close()
    assert not ledger.fix_pending(GROUP, "corr-1")
    redelivered = LedgerJournal(ledger, owner="redelivery", attempt_window_minutes=60)
    assert redelivered.claim(SIGNAL) is None and redelivered.lease() is None  # the dead claim expired long ago
    assert not redelivered.resumes_after_fix  # the replay's redeploy picked the fix up already


def test_no_journal_records_nothing_and_lets_every_run_own_its_failure() -> None:
    journal = NoJournal()
    assert journal.claim(SIGNAL) is None and journal.lease() is None and not journal.resumes_after_fix
    journal.heartbeat()
    journal.record_attempt(GROUP)
    journal.checkpoint("fixed")
    assert journal.attempts_in_window(GROUP) == 0
    assert journal.complete(report()) is None


# --- attempts, cool-downs, storms --------------------------------------------------------------------


def test_attempts_are_counted_in_their_window_only(store: Store) -> None:
    ledger = store.ledger()
    for minutes_ago in (90, 30, 5):
        ledger.record_attempt(GROUP, T0 - timedelta(minutes=minutes_ago))
    ledger.record_attempt(OTHER, T0)

    assert ledger.attempts_in_window(GROUP, 60, T0) == 2
    assert ledger.attempts_in_window(GROUP, 120, T0) == 3
    assert ledger.attempts_in_window(GROUP, 10, T0) == 1
    assert ledger.attempts_in_window(GROUP, 60, T0 + timedelta(minutes=40)) == 1  # the 30-minute one aged out
    assert ledger.attempts_in_window(GROUP.lower(), 60, T0) == 2
    assert ledger.attempts_in_window(OTHER, 60, T0) == 1


def test_the_journal_counts_attempts_for_the_engine_with_the_current_time(store: Store) -> None:
    ledger = store.ledger()
    journal = LedgerJournal(ledger, owner="a", attempt_window_minutes=60)
    assert journal.attempts_in_window(GROUP) == 0
    ledger.record_attempt(GROUP)
    ledger.record_attempt(GROUP, datetime.now(UTC) - timedelta(hours=2))
    assert journal.attempts_in_window(GROUP) == 1


def test_twenty_concurrent_notifiers_send_one_message_per_cool_down(store: Store) -> None:
    ledgers = [store.ledger() for _ in range(20)]
    first_round = concurrently(20, lambda i: ledgers[i].notify_allowed(GROUP, 10, T0, outcome="diagnosed"))
    assert first_round.count(True) == 1

    assert ledgers[0].notify_allowed(GROUP, 10, T0 + timedelta(minutes=5), outcome="diagnosed") is False
    # cool-downs are per resource
    assert ledgers[0].notify_allowed(OTHER, 10, T0 + timedelta(minutes=5), outcome="diagnosed") is True

    # After the cool-down the stored row is updated under an ETag condition: again exactly one.
    after = T0 + timedelta(minutes=11)
    second_round = concurrently(20, lambda i: ledgers[i].notify_allowed(GROUP, 10, after, outcome="diagnosed"))
    assert second_round.count(True) == 1


def test_a_cool_down_is_kept_per_outcome_so_a_report_that_needs_a_person_goes_out(store: Store) -> None:
    ledger = store.ledger()
    assert ledger.notify_allowed(GROUP, 30, T0, outcome="dry-run")
    assert ledger.notify_allowed(GROUP, 30, T0 + timedelta(minutes=1), outcome="remediated")
    assert ledger.notify_allowed(GROUP, 30, T0 + timedelta(minutes=2), outcome="diagnosed")
    assert not ledger.notify_allowed(GROUP, 30, T0 + timedelta(minutes=3), outcome="diagnosed")
    assert not ledger.notify_allowed(GROUP, 30, T0 + timedelta(minutes=4), outcome="dry-run")


def test_storm_count_counts_sent_and_suppressed_notifications_in_the_window(store: Store) -> None:
    ledger = store.ledger()
    assert ledger.storm_count(15, T0) == 0
    ledger.notify_allowed(GROUP, 10, T0 - timedelta(minutes=30), outcome="diagnosed")  # outside a 15-minute window
    for i in range(5):
        ledger.notify_allowed(GROUP, 10, T0 - timedelta(minutes=10 - i), outcome="diagnosed")  # 1 sent, 4 suppressed
    for i in range(3):
        group = f"{RG}/providers/Microsoft.ContainerInstance/containerGroups/g{i}"
        ledger.notify_allowed(group, 10, T0, outcome="diagnosed")

    assert ledger.storm_count(15, T0) == 8
    assert ledger.storm_count(60, T0) == 9
    assert ledger.storm_count(1, T0) == 3
    assert ledger.storm_count(15, T0 + timedelta(minutes=7)) == 5  # three of the early ones aged out


# --- reports -----------------------------------------------------------------------------------------


def test_reports_are_saved_read_and_listed_newest_first(store: Store) -> None:
    ledger = store.ledger()
    reports = [report(correlation=f"c-{i}", started=T0 + timedelta(minutes=i)) for i in range(4)]
    ids = {json.dumps(r, sort_keys=True): ledger.save_report(r) for r in random.sample(reports, len(reports))}
    ledger.save_report(report(resource_id=OTHER))

    assert [r["correlationId"] for r in ledger.reports_for(GROUP)] == ["c-3", "c-2", "c-1", "c-0"]
    assert [r["correlationId"] for r in ledger.reports_for(GROUP, limit=2)] == ["c-3", "c-2"]
    assert [r["resourceId"] for r in ledger.reports_for(OTHER)] == [OTHER]
    for body, report_id in ids.items():
        assert re.fullmatch(r"[A-Za-z0-9_-]+", report_id), report_id  # usable in /api/remediations/{id}
        assert report_id.startswith(resource_hash(GROUP))
        assert ledger.get_report(report_id) == {**json.loads(body), "id": report_id}


def test_a_report_id_is_stable_and_saving_again_does_not_duplicate(store: Store) -> None:
    ledger = store.ledger()
    first = ledger.save_report(report())
    assert store.ledger().save_report(report()) == first  # another instance, same run
    assert len(ledger.reports_for(GROUP)) == 1
    assert ledger.save_report(report(correlation="corr-2")) != first
    assert ledger.save_report(report(started=T0 + timedelta(microseconds=1))) != first


def test_unknown_or_malformed_report_ids_read_as_none(store: Store) -> None:
    ledger = store.ledger()
    real = ledger.save_report(report())
    assert ledger.get_report("no-such-report") is None
    assert ledger.get_report(real[:-1] + ("0" if real[-1] != "0" else "1")) is None
    assert ledger.get_report("../" + real) is None


def test_a_200_kb_report_round_trips_through_a_blob(store: Store) -> None:
    ledger = store.ledger()
    big = report(blob="".join(random.choices(string.ascii_letters, k=200_000)))
    assert len(json.dumps(big)) > 200_000
    report_id = ledger.save_report(big)

    [row] = store.rows("report-")
    assert "Body" not in row and row["Blob"] == f"reports/{report_id}.json"
    assert store.blob_names() == [f"reports/{report_id}.json"]
    assert ledger.get_report(report_id) == {**big, "id": report_id}
    assert store.ledger().reports_for(GROUP) == [{**big, "id": report_id}]


def test_reports_up_to_the_inline_limit_stay_in_the_row(store: Store) -> None:
    ledger = store.ledger()
    base = len(json.dumps(report(pad=""), separators=(",", ":")))
    fits = report(pad="x" * (30_000 - base))
    fits_id = ledger.save_report(fits)
    [row] = store.rows("report-")
    assert "Blob" not in row and len(row["Body"]) == 30_000
    assert ledger.reports_for(GROUP) == [{**fits, "id": fits_id}]
    assert store.ledger().save_report(report(correlation="corr-2", pad="x" * (30_001 - base)))
    assert len(store.blob_names()) == 1


def test_a_large_report_without_blob_storage_is_refused_clearly(azurite: AzuriteInstance, store: Store) -> None:
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    ledger = Ledger(tables, None, table_name=store.table_name)
    report_id = ledger.save_report(report())
    assert ledger.get_report(report_id) == {**report(), "id": report_id}
    with pytest.raises(LedgerError, match="needs blob storage"):
        ledger.save_report(report(pad="x" * 40_000))


# --- retention ---------------------------------------------------------------------------------------


def test_purge_removes_what_is_past_retention_and_keeps_the_rest(store: Store) -> None:
    ledger = store.ledger()
    old, new = T0 - timedelta(days=40), T0 - timedelta(days=1)
    old_small = ledger.save_report(report(correlation="old", started=old))
    old_big = ledger.save_report(report(correlation="old-big", started=old, pad="x" * 40_000))
    new_small = ledger.save_report(report(correlation="new", started=new))
    new_big = ledger.save_report(report(correlation="new-big", started=new, pad="x" * 40_000))
    ledger.record_attempt(GROUP, old)
    ledger.record_attempt(GROUP, new)
    old_claim = ledger.claim(GROUP, "old", owner="a", now=old)
    assert old_claim is not None
    ledger.complete(old_claim, report(correlation="old", started=old))
    ledger.notify_allowed(GROUP, 10, old, outcome="diagnosed")
    ledger.save_snapshot(GROUP, {"location": "eastus"}, now=old)
    # A blob whose row never got written (a save interrupted between the two).
    BlobServiceClient.from_connection_string(store.conn).get_container_client(store.container).upload_blob(
        "reports/orphan.json", b"{}", metadata={"at": old.isoformat()}
    )

    removed = ledger.purge(now=T0)

    assert removed == {"report": 2, "attempt": 1, "claim": 1, "cooldown": 1, "notice": 1, "orphan-blob": 1}
    assert ledger.get_report(old_small) is None and ledger.get_report(old_big) is None
    assert ledger.get_report(new_small) is not None and ledger.get_report(new_big) is not None
    assert store.blob_names() == [f"reports/{new_big}.json"]
    assert ledger.attempts_in_window(GROUP, 60 * 24 * 365, T0) == 1
    assert ledger.last_snapshot(GROUP) == {"location": "eastus"}
    assert ledger.purge(now=T0) == {}  # nothing left to do
    assert ledger.purge(older_than_days=0, now=T0) == {"report": 2, "attempt": 1}


def test_purge_removes_crashed_leases_and_keeps_live_ones(store: Store) -> None:
    ledger = store.ledger()
    assert ledger.lease(GROUP, "crashed", now=T0 - timedelta(hours=1))  # never given up
    assert ledger.lease(OTHER, "alive", now=T0 - timedelta(minutes=1))

    assert ledger.purge(now=T0) == {"lease": 1}
    assert [row["ResourceId"] for row in store.rows("lease-")] == [OTHER]
    assert ledger.lease(OTHER, "someone", now=T0) is False  # the live lease still holds
    assert ledger.purge(older_than_days=0, now=T0) == {}  # whatever the retention


def test_retention_days_are_configurable(store: Store) -> None:
    ledger = store.ledger(retention_days=3)
    kept = ledger.save_report(report(correlation="a", started=T0 - timedelta(days=2)))
    gone = ledger.save_report(report(correlation="b", started=T0 - timedelta(days=4)))
    assert ledger.purge(now=T0) == {"report": 1}
    assert ledger.get_report(kept) is not None and ledger.get_report(gone) is None


# --- snapshots ---------------------------------------------------------------------------------------


def test_snapshots_keep_the_last_known_good_definition(store: Store) -> None:
    ledger = store.ledger()
    assert ledger.last_snapshot(GROUP) is None
    first = {"location": "eastus", "properties": {"containers": [{"name": "app", "properties": {"image": "a:v1"}}]}}
    ledger.save_snapshot(GROUP, first)
    assert store.ledger().last_snapshot(GROUP.upper()) == first
    second = {**first, "tags": {"v": "2"}}
    ledger.save_snapshot(GROUP, second)
    assert ledger.last_snapshot(GROUP) == second
    assert ledger.last_snapshot(OTHER) is None


def test_a_large_snapshot_round_trips_through_a_blob(store: Store) -> None:
    ledger = store.ledger()
    env = [{"name": f"VAR_{i}", "value": "v" * 100} for i in range(500)]
    definition = {"location": "eastus", "properties": {"containers": [{"name": "app", "properties": {"env": env}}]}}
    ledger.save_snapshot(GROUP, definition)
    assert store.blob_names() == [f"snapshots/{resource_hash(GROUP)}.json"]
    assert ledger.last_snapshot(GROUP) == definition


# --- the Azurite helper ------------------------------------------------------------------------------


def test_a_missing_azurite_fails_with_the_setup_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azurite_helper, "AZURITE_BIN", tmp_path / "node_modules" / ".bin" / "azurite")
    with pytest.raises(azurite_helper.AzuriteError, match=r"run `make setup`"):
        azurite_helper.Azurite(tmp_path).start()
