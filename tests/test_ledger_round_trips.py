"""A run's journal does not read back what it holds: its own claim row when it asks whether a fix
is pending, its own lease row when it gives the lease up. Same answers, fewer table round trips."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from remediation.ledger import Ledger, LedgerJournal, resource_hash

from .azurite import AzuriteInstance
from .test_ledger import GROUP, SIGNAL, T0, Store


class Reads:
    """Every ``get_entity`` of a ledger's table, as (partition prefix, row key)."""

    def __init__(self, ledger: Ledger) -> None:
        self.seen: list[tuple[str, str]] = []
        table = ledger._tables()
        original = table.get_entity

        def spy(partition_key: str, row_key: str, **kwargs: Any) -> Any:
            self.seen.append((partition_key.split("-", 1)[0], row_key))
            return original(partition_key, row_key, **kwargs)

        table.get_entity = spy  # type: ignore[method-assign]

    def of(self, kind: str) -> list[str]:
        return [row for prefix, row in self.seen if prefix == kind]


@pytest.fixture
def store(azurite: AzuriteInstance) -> Iterator[Store]:
    yield Store(azurite)


def test_a_run_that_took_over_a_fixed_claim_resumes_without_reading_its_own_claim_row(store: Store) -> None:
    ledger = store.ledger()
    dead = ledger.claim(GROUP, "corr-1", owner="dead", now=T0)
    assert dead is not None
    ledger.mark(dead, "fixed", now=T0)  # the run died between its fixes and its redeploy
    journal = LedgerJournal(ledger, owner="b", attempt_window_minutes=60)
    assert journal.claim(SIGNAL) is None
    reads = Reads(ledger)
    assert journal.lease() is None
    assert journal.resumes_after_fix  # the same answer as reading the row
    assert reads.of("claim") == ["replay|corr-1"]  # only the claim this run does not hold
    assert ledger.fix_pending(GROUP, "corr-1")  # what the row says, read
    journal.close()


def test_a_fresh_claim_owes_no_redeploy_and_its_row_is_not_read(store: Store) -> None:
    ledger = store.ledger()
    journal = LedgerJournal(ledger, owner="a", attempt_window_minutes=60)
    assert journal.claim(SIGNAL) is None
    reads = Reads(ledger)
    assert journal.lease() is None and not journal.resumes_after_fix
    assert reads.of("claim") == ["replay|corr-1"]
    journal.close()


def test_a_run_gives_its_lease_up_without_reading_it_even_after_renewing_it(store: Store) -> None:
    ledger = store.ledger(claim_ttl=timedelta(seconds=1))
    journal = LedgerJournal(ledger, owner="a", attempt_window_minutes=60)
    assert journal.claim(SIGNAL) is None and journal.lease() is None
    time.sleep(0.6)  # past half the TTL: the heartbeat renews the lease, which changes its ETag
    journal.heartbeat()
    reads = Reads(ledger)
    journal.close()
    assert reads.of("lease") == []
    assert store.rows("lease-") == []


def test_a_lease_taken_over_after_it_expired_is_left_to_its_new_holder(store: Store) -> None:
    ledger = store.ledger(claim_ttl=timedelta(seconds=1))
    journal = LedgerJournal(ledger, owner="slow", attempt_window_minutes=60)
    assert journal.claim(SIGNAL) is None and journal.lease() is None
    time.sleep(1.1)  # the slow run's lease expired
    assert ledger.lease(GROUP, "taker")
    journal.close()  # its ETag is stale: the row is read, and it is the taker's
    [lease] = store.rows("lease-")
    assert lease["Owner"] == "taker" and lease["PartitionKey"] == "lease-" + resource_hash(GROUP)
