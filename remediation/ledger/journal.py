"""The journal of one run in the ledger (:class:`remediation.journal.RunJournal`), used by the service."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..journal import Held
from ..model import FailureSignal
from .coordination import Claim, ClaimLost
from .store import log

if TYPE_CHECKING:
    from . import Ledger


class LedgerJournal:
    """One run's claim, lease, attempts, checkpoints, snapshot and report, all in ``ledger``.

    The journal holds the run's current claim (each renewal gets a new ETag), so nothing else
    does. Without :meth:`claim` (a dry run) it still counts attempts for the gate, and stores the
    report without closing a claim.
    """

    def __init__(self, ledger: Ledger, *, owner: str, attempt_window_minutes: int) -> None:
        self._ledger = ledger
        self._owner = owner
        self._window = attempt_window_minutes
        self._claim: Claim | None = None
        self._failure: tuple[str | None, str | None] = (None, None)
        """(correlation id, event id) that key the claimed failure."""
        self._resumes = False
        self._lease: tuple[str, str] | None = None
        """(resource id, lease owner) while the run holds the group's lease."""
        self._lease_etag: str | None = None
        """The lease row's ETag as this run last wrote it (None: unknown, read before deleting)."""

    @property
    def resumes_after_fix(self) -> bool:
        return self._resumes

    def claim(self, signal: FailureSignal, *, replay: bool = False) -> Held | None:
        # without a correlation id or an event id nothing identifies redeliveries: the run is its own
        event_key = signal.event_id or (None if signal.correlation_id else f"run-{uuid.uuid4()}")
        self._failure = (signal.correlation_id, event_key)
        taken = self._ledger.claim_or_held(signal.resource_id, signal.correlation_id, owner=self._owner,
                                           event_id=event_key, force=replay, replay=replay)
        if isinstance(taken, Held):
            return taken
        self._claim = taken
        return None

    def lease(self) -> Held | None:
        if self._claim is None:
            raise RuntimeError("a run leases its group only after claiming its failure")
        # one owner per run, so two runs of one instance do not share the lease
        holder = (self._claim.resource_id, f"{self._owner}:{uuid.uuid4().hex[:8]}")
        etag = self._ledger.take_lease(*holder)
        if etag is None:
            return self._ledger.lease_held(holder[0]) or Held(datetime.now(UTC))
        self._lease, self._lease_etag = holder, etag
        # read only now: while this run holds the group, no other can finish the fix meanwhile
        correlation_id, event_id = self._failure
        self._resumes = self._ledger.fix_pending(holder[0], correlation_id, event_id=event_id, held=self._claim)
        return None

    def heartbeat(self) -> None:
        claim = self._claim
        if claim is None or claim.expires_at - datetime.now(UTC) >= self._ledger.claim_ttl / 2:
            return
        self._claim = self._ledger.extend(claim)
        if self._lease is not None:
            self._lease_etag = self._ledger.take_lease(*self._lease)

    def attempts_in_window(self, resource_id: str) -> int:
        return self._ledger.attempts_in_window(resource_id, self._window)

    def record_attempt(self, resource_id: str) -> None:
        self._ledger.record_attempt(resource_id)

    def checkpoint(self, stage: str) -> None:
        if self._claim is not None:
            self._claim = self._ledger.mark(self._claim, stage)

    def redeployed(self, resource_id: str, body: Mapping[str, Any]) -> None:
        self._ledger.save_snapshot(resource_id, body)

    def complete(self, report: Mapping[str, Any]) -> str:
        claim, self._claim = self._claim, None
        if claim is None:
            return self._ledger.save_report(report)
        try:
            return self._ledger.complete(claim, report)
        except ClaimLost as lost:
            log.warning("claim taken over while running; report kept as %s", lost.report_id)
            return lost.report_id

    def release(self) -> None:
        claim, self._claim = self._claim, None
        if claim is not None:
            self._ledger.abandon(claim)

    def close(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            self._ledger.release_lease(*lease, etag=self._lease_etag)
