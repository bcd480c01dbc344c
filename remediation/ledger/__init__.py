"""The function app's durable ledger, shared by all its instances, in three parts:

- coordination (:mod:`.coordination`): claims, leases and queued jobs, who runs what;
- reports and snapshots (:mod:`.reports`): what the app keeps;
- noise control (:mod:`.noise`): fix attempts, cool-downs and storms.

A run reaches the ledger through its journal (:class:`LedgerJournal`, the ledger's
:class:`remediation.journal.RunJournal`). Everything lives in one Azure Table
(``RemediationLedger`` by default), each kind of row in its own partitions, plus a blob container
(``remediation-reports``) for texts too large for a table property:

============  ================================  ===============================  ==========================
row kind      PartitionKey                      RowKey                           used for
============  ================================  ===============================  ==========================
claim         ``claim-<resource hash>``         correlation id (else event id);  exactly-once effect
                                                ``replay|`` + it for a replay
lease         ``lease-<resource hash>``         ``group``                        one run per group at a time
job           ``job-<job id>``                  ``job``, then ``part-<n>``       a queued replay's progress
attempt       ``attempt-<resource hash>``       time + random suffix             the policy's attempt limit
cooldown      ``cooldown-<resource hash>``      the report's outcome             one message per outcome
                                                                                 per cool-down
notice        ``notice-<UTC minute>``           time + random suffix             storm detection
report        ``report-<resource hash>``        inverted start time + digest     audit, newest first
snapshot      ``snapshot-<resource hash>``      ``latest``                       last known-good definition
============  ================================  ===============================  ==========================

Blobs: ``reports/…`` (reports too large for a row), ``snapshots/…`` (such snapshots) and
``payloads/…`` (a queued job too large for a 64 KiB queue message; the message names the blob).

The resource hash is a SHA-256 of the lower-cased resource id: ARM ids are case-insensitive and
contain ``/``, which keys may not. Every row carries ``Kind`` and ``At`` (UTC), which
:meth:`Ledger.purge` reads, and ``ResourceId``, except a job's part rows. Leases also carry
``ExpiresAt``: purge removes a lease once it has expired (its run crashed without giving it up).

Claims: a claim is closed (``done``) only by a run whose outcome finished the remediation
(:data:`FINISHED_OUTCOMES`); a skipped or failed run gives it back. Replays claim apart from Event
Grid deliveries, so a replay, forged or not, never takes or closes the claim the delivery of the
same failure needs; the group's lease and idempotent writes keep the two from writing twice, and a
run resumes a fix left by either (:meth:`Ledger.fix_pending`).

Concurrency: Event Grid delivers at least once and the app scales out, so every decision that
must be taken once (who runs a remediation, who holds a group, who sends a notification) is a
conditional write (:func:`~.store.insert_or_take_over`): an insert that fails when the row exists,
or a replacement conditioned on the ETag that was read. Only one writer wins; the others see the
winner's row.

Every method taking ``now`` uses the current UTC time when it is omitted; tests pass it instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceModifiedError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from .coordination import FINISHED_OUTCOMES, Claim, ClaimLost, ClaimStatus, Coordination
from .journal import LedgerJournal
from .noise import NoiseControl
from .reports import Reports
from .store import (
    DEFAULT_CLAIM_TTL,
    DEFAULT_REPORTS_CONTAINER,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_TABLE,
    INLINE_LIMIT,
    LedgerError,
    etag_of,
    parse_time,
    resource_hash,
    utc,
)

__all__ = [
    "DEFAULT_CLAIM_TTL", "DEFAULT_REPORTS_CONTAINER", "DEFAULT_RETENTION_DAYS", "DEFAULT_TABLE", "FINISHED_OUTCOMES",
    "INLINE_LIMIT", "Claim", "ClaimLost", "ClaimStatus", "Ledger", "LedgerError", "LedgerJournal", "resource_hash",
]


class Ledger(Coordination, Reports, NoiseControl):
    """The durable state of the function app, shared by all its instances.

    Build it from a :class:`TableServiceClient` (or a :class:`TableClient` for the table itself)
    and, for reports larger than ``inline_limit`` characters, a :class:`BlobServiceClient`; or use
    :meth:`from_connection_string` (Azurite, a storage account key) or :meth:`from_endpoints`
    (an identity-based connection with a ``TokenCredential``). The table and the container are
    created on first use.
    """

    @classmethod
    def from_connection_string(cls, connection_string: str, **options: Any) -> Ledger:
        """A ledger on the storage account of ``connection_string`` (tables and blobs)."""
        return cls(
            TableServiceClient.from_connection_string(connection_string),
            BlobServiceClient.from_connection_string(connection_string),
            **options,
        )

    @classmethod
    def from_endpoints(
        cls, table_endpoint: str, credential: TokenCredential, *, blob_endpoint: str | None = None, **options: Any
    ) -> Ledger:
        """A ledger reached with an identity (e.g. ``https://<account>.table.core.windows.net``).

        The identity needs Storage Table Data Contributor, and Storage Blob Data Contributor on the
        account when ``blob_endpoint`` is given.
        """
        blobs = BlobServiceClient(blob_endpoint, credential=credential) if blob_endpoint else None
        return cls(TableServiceClient(table_endpoint, credential=credential), blobs, **options)

    def complete(self, claim: Claim, report: Mapping[str, Any], *, now: datetime | None = None) -> str:
        """Save ``report`` and settle the claim by its outcome; returns the report id.

        An outcome in :data:`FINISHED_OUTCOMES` marks the claim done (later claims get None); any
        other gives it back (released), so the next delivery or replay of the failure runs again.
        Raises :class:`ClaimLost` (carrying ``report_id``) when the claim expired and another
        instance took it over meanwhile: the report is saved, the new owner's row is left alone.
        """
        report_id = self.save_report(report, now=now)
        if str(report.get("outcome") or "") in FINISHED_OUTCOMES:
            self.mark_done(claim, report_id, now=now)
        elif not self.abandon(claim):
            raise ClaimLost(claim, report_id)
        return report_id

    def fix_pending(self, resource_id: str, correlation_id: str | None, *, event_id: str | None = None,
                    held: Claim | None = None) -> bool:
        """Whether a run of this failure applied its fixes and no redeploy of the group has
        succeeded since (the group's last known good is older), so a new run owes the redeploy.

        Delivered and replayed runs both count: a replay finishes what a crashed delivery left,
        and the delivery, retried after that, does not redeploy again. ``held``: the caller's own
        claim of the failure, whose row need not be read (:meth:`fixed_at`).
        """
        fixed = self.fixed_at(resource_id, correlation_id, event_id=event_id, held=held)
        if fixed is None:
            return False
        redeployed = self.snapshot_saved_at(resource_id)
        return redeployed is None or redeployed < fixed

    # --- retention -------------------------------------------------------------------------------

    def purge(self, older_than_days: int | None = None, now: datetime | None = None) -> dict[str, int]:
        """Delete rows (and their blobs) older than the retention, and expired leases; returns how
        many of each kind.

        Snapshots are kept whatever their age: a group's last known-good definition stays useful.
        Report blobs whose row is gone (a save interrupted between blob and row), and job payloads,
        are removed too.
        """
        days = self.retention_days if older_than_days is None else older_than_days
        at = utc(now)
        self._finished.clear()  # a purged claim row is no longer finished
        cutoff = at - timedelta(days=days)
        table = self._tables()
        removed: dict[str, int] = {}
        old = table.query_entities("At lt @cutoff and Kind ne @keep and Kind ne @lease",
                                   parameters={"cutoff": cutoff, "keep": "snapshot", "lease": "lease"})
        # a lease is judged by its expiry: a live one may be older than a short retention
        expired = table.query_entities("Kind eq @lease and ExpiresAt lt @now", parameters={"lease": "lease", "now": at})
        for row in [*old, *expired]:
            blob = row.get("Blob")
            if blob:
                self._delete_blob(str(blob))
            try:
                table.delete_entity(row, etag=etag_of(row), match_condition=MatchConditions.IfNotModified)
            except ResourceModifiedError:
                continue  # rewritten since it was read, so no longer old (or a lease renewed)
            kind = str(row.get("Kind") or "other")
            removed[kind] = removed.get(kind, 0) + 1
        orphans = self._purge_orphan_blobs(cutoff)
        if orphans:
            removed["orphan-blob"] = orphans
        return removed

    def _purge_orphan_blobs(self, cutoff: datetime) -> int:
        if self._container is None:
            return 0
        container = self._containers()
        count = 0
        for prefix in ("reports/", "payloads/"):
            for blob in container.list_blobs(name_starts_with=prefix, include=["metadata"]):
                at = parse_time((blob.metadata or {}).get("at"))
                if at is not None and at < cutoff:
                    self._delete_blob(blob.name)
                    count += 1
        return count
