"""The function app's durable ledger: claims, attempts, cool-downs, reports and snapshots.

Everything lives in one Azure Table (``RemediationLedger`` by default), each kind of row in its
own partitions, plus a blob container (``remediation-reports``) for reports and snapshots too
large for a table property:

============  ================================  ===============================  ==========================
row kind      PartitionKey                      RowKey                           used for
============  ================================  ===============================  ==========================
claim         ``claim-<resource hash>``         correlation id (else event id)   exactly-once effect
attempt       ``attempt-<resource hash>``       time + random suffix             the policy's attempt limit
cooldown      ``cooldown-<resource hash>``      ``last``                         one message per cool-down
notice        ``notice-<UTC minute>``           time + random suffix             storm detection
report        ``report-<resource hash>``        inverted start time + digest     audit, newest first
snapshot      ``snapshot-<resource hash>``      ``latest``                       last known-good definition
job           ``job-<job id>``                  ``job``, then ``part-<n>``       a queued replay's progress
============  ================================  ===============================  ==========================

Blobs: ``reports/…`` (reports and snapshots too large for a row) and ``payloads/…`` (a queued job
too large for a 64 KiB queue message; the message names the blob).

The resource hash is a SHA-256 of the lower-cased resource id: ARM ids are case-insensitive and
contain ``/``, which keys may not. Every row carries ``Kind``, ``ResourceId`` and ``At`` (UTC),
which :meth:`Ledger.purge` reads.

Concurrency: Event Grid delivers at least once and the app scales out, so every decision that
must be taken once (who runs a remediation, who sends a notification) is a conditional write: an
insert that fails when the row exists, or an update conditioned on the ETag that was read. Only
one writer wins; the others see the winner's row.

Every method taking ``now`` uses the current UTC time when it is omitted; tests pass it instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode
from azure.storage.blob import BlobServiceClient, ContainerClient

log = logging.getLogger(__name__)

DEFAULT_TABLE = "RemediationLedger"
DEFAULT_REPORTS_CONTAINER = "remediation-reports"
DEFAULT_CLAIM_TTL = timedelta(minutes=15)
DEFAULT_RETENTION_DAYS = 30
INLINE_LIMIT = 30_000
"""Longer texts go to a blob. A string property holds 64 KiB (32 Ki UTF-16 units); JSON is written
ASCII-only, so its length in characters is its length in UTF-16 units."""

_MAX_MICROS = 10**16 - 1  # inverted timestamps stay 16 digits until the year 2286
_SAFE_KEY = re.compile(r"[A-Za-z0-9._:@=+-]{1,200}")
_REPORT_ID = re.compile(r"([0-9a-f]{32})-([0-9]{16}-[0-9a-f]{12})")

ClaimStatus = Literal["running", "done", "released"]


class LedgerError(RuntimeError):
    """The ledger cannot do what was asked (e.g. a large report without blob storage, a lost blob)."""


class ClaimLost(LedgerError):
    """:meth:`Ledger.complete` found the claim taken over after it expired; the report was still saved."""

    def __init__(self, claim: Claim, report_id: str) -> None:
        super().__init__(f"the claim on {claim.resource_id} ({claim.key}) by {claim.owner} was taken over; "
                         f"report {report_id} saved, the claim row left to its new owner")
        self.report_id = report_id


@dataclass(frozen=True)
class Claim:
    """The right to remediate one failure (a resource and a correlation id) until ``expires_at``."""

    resource_id: str
    key: str
    """The row key: the correlation id, or the event id when there is none (made key-safe)."""
    owner: str
    etag: str
    claimed_at: datetime
    expires_at: datetime
    taken_over_from: str | None = None
    """The previous owner, when this claim took over an expired or released one."""
    previous_stage: str | None = None
    """How far the previous owner got (``"fixed"``: fixes applied, redeploy not done)."""


def resource_hash(resource_id: str) -> str:
    """The 32-hex-digit key of a resource id (case-insensitive, as ARM ids are)."""
    return hashlib.sha256(resource_id.strip().lower().encode()).hexdigest()[:32]


def _key(value: str) -> str:
    """A RowKey for an id: itself (lower-cased) when safe, else a hash (keys forbid / \\ # ? and controls)."""
    lowered = value.strip().lower()
    if _SAFE_KEY.fullmatch(lowered):
        return lowered
    return "h-" + hashlib.sha256(value.encode()).hexdigest()[:40]


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _stamp(at: datetime) -> str:
    """A sortable, key-safe time: ``20250101T120000.123456Z``."""
    return at.strftime("%Y%m%dT%H%M%S.%fZ")


def _unique(at: datetime) -> str:
    return f"{_stamp(at)}-{uuid.uuid4().hex[:12]}"


def _inverted(at: datetime) -> str:
    micros = int(at.timestamp() * 1_000_000)
    return f"{_MAX_MICROS - micros:016d}"


def _bucket(at: datetime) -> str:
    return "notice-" + at.strftime("%Y%m%d%H%M")


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str) and value:
        try:
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _job_partition(job_id: str) -> str:
    return "job-" + _key(job_id)


def _etag(entity: TableEntity | Mapping[str, Any]) -> str:
    metadata = getattr(entity, "metadata", None) or {}
    etag = metadata.get("etag") or (entity.get("etag") if isinstance(entity, Mapping) else None)
    if not etag:
        raise LedgerError("the table service returned no ETag")
    return str(etag)


class Ledger:
    """The durable state of the function app, shared by all its instances.

    Build it from a :class:`TableServiceClient` (or a :class:`TableClient` for the table itself)
    and, for reports larger than ``inline_limit`` characters, a :class:`BlobServiceClient`; or use
    :meth:`from_connection_string` (Azurite, a storage account key) or :meth:`from_endpoints`
    (an identity-based connection with a ``TokenCredential``). The table and the container are
    created on first use.
    """

    def __init__(
        self,
        tables: TableServiceClient | TableClient,
        blobs: BlobServiceClient | None = None,
        *,
        table_name: str = DEFAULT_TABLE,
        reports_container: str = DEFAULT_REPORTS_CONTAINER,
        claim_ttl: timedelta = DEFAULT_CLAIM_TTL,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        inline_limit: int = INLINE_LIMIT,
    ) -> None:
        self._table = tables.get_table_client(table_name) if isinstance(tables, TableServiceClient) else tables
        self._container: ContainerClient | None = (
            blobs.get_container_client(reports_container) if blobs is not None else None
        )
        self.claim_ttl = claim_ttl
        self.retention_days = retention_days
        self.inline_limit = inline_limit
        self._lock = threading.Lock()
        self._table_ready = False
        self._container_ready = False

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

    def close(self) -> None:
        self._table.close()
        if self._container is not None:
            self._container.close()

    # --- claims: exactly-once effect under at-least-once delivery -------------------------------

    def claim(
        self,
        resource_id: str,
        correlation_id: str | None,
        *,
        owner: str,
        now: datetime | None = None,
        event_id: str | None = None,
        force: bool = False,
    ) -> Claim | None:
        """Claim the remediation of one failure, or None when someone else has it or it is done.

        The failure is keyed by ``correlation_id`` (or ``event_id`` when there is none), so every
        delivery of the same event, and every event of the same failed write, maps to one row. A
        claim that was released (:meth:`abandon`) or expired (older than ``claim_ttl``) is taken
        over; among concurrent takers exactly one wins. ``force`` (a person's replay) also takes
        over a finished claim, but never one that is running and not expired.
        """
        ident = correlation_id or event_id
        if not ident:
            raise ValueError("a claim needs a correlation id or an event id")
        at = _utc(now)
        table = self._tables()
        pk, rk = "claim-" + resource_hash(resource_id), _key(ident)
        row = {
            "PartitionKey": pk, "RowKey": rk, "Kind": "claim", "ResourceId": resource_id, "Key": ident,
            "Status": "running", "Owner": owner, "At": at, "ExpiresAt": at + self.claim_ttl, "Takeovers": 0,
        }
        for _ in range(3):
            try:
                created = table.create_entity(row)
                return Claim(resource_id, rk, owner, _etag(created), at, at + self.claim_ttl)
            except ResourceExistsError:
                pass
            try:
                existing = table.get_entity(pk, rk)
            except ResourceNotFoundError:
                continue  # purged between the insert and the read: insert again
            status = existing.get("Status")
            expires = _parse_time(existing.get("ExpiresAt"))
            if (status == "done" and not force) or (status == "running" and expires is not None and expires > at):
                return None
            previous_stage = str(existing.get("Stage") or "") or None
            if status == "done":
                previous_stage = None  # a finished run left nothing to resume
            takeover = {**row, "Takeovers": int(existing.get("Takeovers") or 0) + 1,
                        "PreviousOwner": str(existing.get("Owner") or ""), "Stage": previous_stage or ""}
            try:
                updated = table.update_entity(takeover, mode=UpdateMode.REPLACE, etag=_etag(existing),
                                              match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError):
                return None  # another instance took it over first
            log.info("claim on %s (%s) taken over from %s by %s", resource_id, ident, existing.get("Owner"), owner)
            return Claim(resource_id, rk, owner, _etag(updated), at, at + self.claim_ttl,
                         taken_over_from=str(existing.get("Owner") or "") or None, previous_stage=previous_stage)
        return None

    def complete(self, claim: Claim, report: Mapping[str, Any], *, now: datetime | None = None) -> str:
        """Save ``report`` and mark the claim done (later claims get None); returns the report id.

        Raises :class:`ClaimLost` (carrying ``report_id``) when the claim expired and another
        instance took it over meanwhile: the report is saved, the new owner's row is left alone.
        """
        report_id = self.save_report(report, now=now)
        done = {**self._claim_row(claim), "Status": "done", "ReportId": report_id, "CompletedAt": _utc(now)}
        try:
            self._tables().update_entity(
                done, mode=UpdateMode.MERGE, etag=claim.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ClaimLost(claim, report_id) from exc
        return report_id

    def abandon(self, claim: Claim) -> bool:
        """Release the claim so a redelivery may retry at once; False when it was already taken over."""
        released = {**self._claim_row(claim), "Status": "released"}
        try:
            self._tables().update_entity(
                released, mode=UpdateMode.MERGE, etag=claim.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def extend(self, claim: Claim, *, now: datetime | None = None) -> Claim:
        """Keep a running claim alive for another ``claim_ttl``; raises ClaimLost if taken over."""
        return self._merge_claim(claim, {}, now)

    def mark(self, claim: Claim, stage: str, *, now: datetime | None = None) -> Claim:
        """Record how far the run got (e.g. ``"fixed"``) and extend the claim; ClaimLost if taken over."""
        return self._merge_claim(claim, {"Stage": stage}, now)

    def _merge_claim(self, claim: Claim, fields: dict[str, Any], now: datetime | None) -> Claim:
        at = _utc(now)
        row = {**self._claim_row(claim), **fields, "ExpiresAt": at + self.claim_ttl}
        try:
            updated = self._tables().update_entity(
                row, mode=UpdateMode.MERGE, etag=claim.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ClaimLost(claim, "") from exc
        return replace(claim, etag=_etag(updated), expires_at=at + self.claim_ttl)

    # --- one run per container group at a time ---------------------------------------------------

    def lease(self, resource_id: str, owner: str, *, now: datetime | None = None) -> bool:
        """Take (or renew) the group's lease: two failures of one group are not fixed and redeployed at
        once. False while another owner holds an unexpired lease."""
        at = _utc(now)
        table = self._tables()
        pk = "lease-" + resource_hash(resource_id)
        row: dict[str, Any] = {"PartitionKey": pk, "RowKey": "group", "Kind": "lease",
                               "ResourceId": resource_id, "Owner": owner, "ExpiresAt": at + self.claim_ttl}
        try:
            table.create_entity(row)
            return True
        except ResourceExistsError:
            pass
        try:
            existing = table.get_entity(pk, "group")
        except ResourceNotFoundError:
            return self.lease(resource_id, owner, now=now)
        expires = _parse_time(existing.get("ExpiresAt"))
        if existing.get("Owner") != owner and expires is not None and expires > at:
            return False
        try:
            table.update_entity(row, mode=UpdateMode.REPLACE, etag=_etag(existing),
                                match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def release_lease(self, resource_id: str, owner: str) -> None:
        """Give the lease up, if it is still this owner's."""
        table = self._tables()
        try:
            existing = table.get_entity("lease-" + resource_hash(resource_id), "group")
            if existing.get("Owner") == owner:
                table.delete_entity(existing, etag=_etag(existing), match_condition=MatchConditions.IfNotModified)
        except (ResourceNotFoundError, ResourceModifiedError):
            pass

    # --- queued jobs (replays answered 202) ------------------------------------------------------

    def put_job(self, job_id: str, resource_id: str, *, parts: int = 1, now: datetime | None = None) -> None:
        """Record a queued job of ``parts`` queue messages, so its status can be asked for before
        its reports exist. Each part records its reports with :meth:`finish_job`."""
        self._tables().upsert_entity({"PartitionKey": _job_partition(job_id), "RowKey": "job", "Kind": "job",
                                      "ResourceId": resource_id, "Status": "queued", "Parts": parts,
                                      "At": _utc(now)})

    def finish_job(self, job_id: str, report_ids: list[str], *, part: int = 0, now: datetime | None = None) -> None:
        """One part of a job is done (idempotent: a redelivered part overwrites its own row)."""
        self._tables().upsert_entity({"PartitionKey": _job_partition(job_id), "RowKey": f"part-{part:05d}",
                                      "Kind": "job", "ReportIds": json.dumps(report_ids), "At": _utc(now)})

    def fail_job(self, job_id: str, error: str, *, queued_parts: int, now: datetime | None = None) -> None:
        """Not every part could be queued: only ``queued_parts`` will ever finish."""
        self._tables().upsert_entity({"PartitionKey": _job_partition(job_id), "RowKey": "job", "Status": "failed",
                                      "Error": error, "Parts": queued_parts, "At": _utc(now)},
                                     mode=UpdateMode.MERGE)

    def job(self, job_id: str) -> dict[str, Any] | None:
        """``{"id", "status", "resourceId", "parts", "finished", "reportIds", "error"}`` of a job, or None.

        ``status`` is ``queued`` until every queued part has finished, then ``done`` (``failed``
        when some parts could not be queued)."""
        if not _SAFE_KEY.fullmatch(job_id):
            return None
        rows = list(self._tables().query_entities("PartitionKey eq @pk", parameters={"pk": _job_partition(job_id)}))
        head = next((r for r in rows if r["RowKey"] == "job"), None)
        if head is None:
            return None
        parts = sorted((r for r in rows if str(r["RowKey"]).startswith("part-")), key=lambda r: str(r["RowKey"]))
        expected = int(head.get("Parts") or 1)
        finished = len(parts) >= expected
        status = str(head.get("Status") or "queued")
        if status != "failed":
            status = "done" if finished else "queued"
        return {"id": job_id, "status": status, "resourceId": head.get("ResourceId"), "parts": expected,
                "finished": len(parts), "error": head.get("Error"),
                "reportIds": [i for r in parts for i in json.loads(str(r.get("ReportIds") or "[]"))]}

    # --- queue payloads too large for a message --------------------------------------------------

    def put_payload(self, text: str, *, now: datetime | None = None) -> str:
        """Keep a job too large for a queue message; the message then names it."""
        name = f"payloads/{uuid.uuid4().hex}.json"
        self._containers().upload_blob(name, text.encode(), overwrite=True, metadata={"at": _utc(now).isoformat()})
        return name

    def get_payload(self, name: str) -> str:
        if not name.startswith("payloads/"):
            raise LedgerError(f"{name!r} is not a job payload")
        try:
            data: bytes = self._containers().download_blob(name).readall()
        except ResourceNotFoundError as exc:
            raise LedgerError(f"job payload {name} is missing") from exc
        return data.decode()

    @staticmethod
    def _claim_row(claim: Claim) -> dict[str, Any]:
        return {"PartitionKey": "claim-" + resource_hash(claim.resource_id), "RowKey": claim.key}

    # --- attempts, cool-downs, storms ------------------------------------------------------------

    def record_attempt(self, resource_id: str, now: datetime | None = None) -> None:
        """Record one fix attempt on a container group (read back by :meth:`attempts_in_window`)."""
        at = _utc(now)
        self._tables().create_entity({
            "PartitionKey": "attempt-" + resource_hash(resource_id), "RowKey": _unique(at),
            "Kind": "attempt", "ResourceId": resource_id, "At": at,
        })

    def attempts_in_window(self, resource_id: str, minutes: int, now: datetime | None = None) -> int:
        """How many attempts on ``resource_id`` were recorded in the ``minutes`` before ``now``."""
        at = _utc(now)
        rows = self._tables().query_entities(
            "PartitionKey eq @pk and At gt @since and At le @now",
            parameters={"pk": "attempt-" + resource_hash(resource_id), "since": at - timedelta(minutes=minutes),
                        "now": at},
            select=["RowKey"],
        )
        return sum(1 for _ in rows)

    def attempts_counter(self, minutes: int) -> Callable[[str], int]:
        """``Engine.attempts_in_window``: the attempts on a resource in the last ``minutes``."""
        return lambda resource_id: self.attempts_in_window(resource_id, minutes)

    def notify_allowed(self, resource_id: str, cooldown_minutes: int, now: datetime | None = None) -> bool:
        """Whether this caller may notify about ``resource_id`` now; True for one caller per cool-down.

        A True answer records the notification (conditional insert or ETag-conditioned update), so
        concurrent instances cannot both get True. Every call, allowed or suppressed, is counted
        for :meth:`storm_count`.
        """
        at = _utc(now)
        allowed = self._take_cooldown(resource_id, timedelta(minutes=cooldown_minutes), at)
        self._tables().create_entity({
            "PartitionKey": _bucket(at), "RowKey": _unique(at), "Kind": "notice", "ResourceId": resource_id,
            "At": at, "Sent": allowed,
        })
        return allowed

    def _take_cooldown(self, resource_id: str, cooldown: timedelta, at: datetime) -> bool:
        table = self._tables()
        pk = "cooldown-" + resource_hash(resource_id)
        row = {"PartitionKey": pk, "RowKey": "last", "Kind": "cooldown", "ResourceId": resource_id, "At": at}
        # Each failed round means another caller's write won, so a bounded loop is enough.
        for _ in range(5):
            try:
                existing = table.get_entity(pk, "last")
            except ResourceNotFoundError:
                try:
                    table.create_entity(row)
                    return True
                except ResourceExistsError:
                    continue
            last = _parse_time(existing.get("At"))
            if last is not None and last > at - cooldown:
                return False
            try:
                table.update_entity(
                    row, mode=UpdateMode.REPLACE, etag=_etag(existing), match_condition=MatchConditions.IfNotModified
                )
                return True
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
        return False

    def storm_count(self, window_minutes: int, now: datetime | None = None) -> int:
        """How many notifications (sent or suppressed, all resources) were asked for in the window."""
        at = _utc(now)
        since = at - timedelta(minutes=window_minutes)
        rows = self._tables().query_entities(
            "PartitionKey ge @first and PartitionKey le @last and At gt @since and At le @now",
            parameters={"first": _bucket(since), "last": _bucket(at), "since": since, "now": at},
            select=["RowKey"],
        )
        return sum(1 for _ in rows)

    # --- reports ---------------------------------------------------------------------------------

    def save_report(self, report: Mapping[str, Any], *, now: datetime | None = None) -> str:
        """Store a report; returns its id, the same for the same resource, correlation id and start time.

        Reports longer than ``inline_limit`` characters of JSON go to a blob, the row keeps a pointer.
        """
        resource_id = str(report.get("resourceId") or "")
        if not resource_id:
            raise ValueError("a report needs a resourceId")
        started = _parse_time(report.get("startedAt")) or _utc(now)
        ident = str(report.get("correlationId") or report.get("eventId") or "")
        digest = hashlib.sha256(f"{resource_id.lower()}|{ident.lower()}|{started.isoformat()}".encode()).hexdigest()
        rh, rk = resource_hash(resource_id), f"{_inverted(started)}-{digest[:12]}"
        report_id = f"{rh}-{rk}"
        row: dict[str, Any] = {
            "PartitionKey": "report-" + rh, "RowKey": rk, "Kind": "report", "ResourceId": resource_id,
            "CorrelationId": str(report.get("correlationId") or ""), "Outcome": str(report.get("outcome") or ""),
            "Trigger": str(report.get("trigger") or ""), "At": started, "SavedAt": _utc(now),
        }
        self._put_text(row, json.dumps(report, separators=(",", ":")), f"reports/{report_id}.json", started)
        self._tables().upsert_entity(row, mode=UpdateMode.REPLACE)
        return report_id

    def get_report(self, report_id: str) -> dict[str, Any] | None:
        """The stored report with this id, or None (also for an id that is not one of ours)."""
        match = _REPORT_ID.fullmatch(report_id or "")
        if not match:
            return None
        try:
            row = self._tables().get_entity("report-" + match.group(1), match.group(2))
        except ResourceNotFoundError:
            return None
        return self._report_of(row)

    def reports_for(self, resource_id: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The reports of one container group, newest first (by their ``startedAt``)."""
        rows = self._tables().query_entities(
            "PartitionKey eq @pk", parameters={"pk": "report-" + resource_hash(resource_id)}
        )
        reports: list[dict[str, Any]] = []
        for row in sorted(rows, key=lambda r: str(r["RowKey"])):  # inverted time: ascending is newest first
            reports.append(self._report_of(row))
            if limit is not None and len(reports) >= limit:
                break
        return reports

    def _report_of(self, row: TableEntity) -> dict[str, Any]:
        report = json.loads(self._get_text(row))
        if not isinstance(report, dict):
            raise LedgerError(f"report row {row['PartitionKey']}/{row['RowKey']} does not hold a JSON object")
        report["id"] = f"{str(row['PartitionKey']).removeprefix('report-')}-{row['RowKey']}"
        return report

    # --- last known good -------------------------------------------------------------------------

    def save_snapshot(self, resource_id: str, definition: Mapping[str, Any], *, now: datetime | None = None) -> None:
        """Keep ``definition`` (already redacted) as the group's last known-good one, replacing the previous."""
        at = _utc(now)
        rh = resource_hash(resource_id)
        row: dict[str, Any] = {"PartitionKey": "snapshot-" + rh, "RowKey": "latest", "Kind": "snapshot",
                               "ResourceId": resource_id, "At": at}
        self._put_text(row, json.dumps(definition, separators=(",", ":")), f"snapshots/{rh}.json", at)
        self._tables().upsert_entity(row, mode=UpdateMode.REPLACE)

    def last_snapshot(self, resource_id: str) -> dict[str, Any] | None:
        """The last known-good definition (``GatherOptions.snapshot``), or None when none was kept."""
        try:
            row = self._tables().get_entity("snapshot-" + resource_hash(resource_id), "latest")
        except ResourceNotFoundError:
            return None
        definition = json.loads(self._get_text(row))
        return definition if isinstance(definition, dict) else None

    # --- retention -------------------------------------------------------------------------------

    def purge(self, older_than_days: int | None = None, now: datetime | None = None) -> dict[str, int]:
        """Delete rows (and their blobs) older than the retention; returns how many of each kind.

        Snapshots are kept whatever their age: a group's last known-good definition stays useful.
        Report blobs whose row is gone (a save interrupted between blob and row) are removed too.
        """
        days = self.retention_days if older_than_days is None else older_than_days
        cutoff = _utc(now) - timedelta(days=days)
        table = self._tables()
        removed: dict[str, int] = {}
        rows = table.query_entities(
            "At lt @cutoff and Kind ne @keep", parameters={"cutoff": cutoff, "keep": "snapshot"}
        )
        for row in list(rows):
            blob = row.get("Blob")
            if blob:
                self._delete_blob(str(blob))
            try:
                table.delete_entity(row, etag=_etag(row), match_condition=MatchConditions.IfNotModified)
            except ResourceModifiedError:
                continue  # rewritten since it was read, so no longer old
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
                at = _parse_time((blob.metadata or {}).get("at"))
                if at is not None and at < cutoff:
                    self._delete_blob(blob.name)
                    count += 1
        return count

    # --- storage plumbing ------------------------------------------------------------------------

    def _put_text(self, row: dict[str, Any], text: str, blob_name: str, at: datetime) -> None:
        if len(text) <= self.inline_limit:
            row["Body"] = text
            return
        if self._container is None:
            raise LedgerError(f"{len(text)} characters do not fit a table row; the ledger needs blob storage for them")
        self._containers().upload_blob(blob_name, text.encode(), overwrite=True, metadata={"at": at.isoformat()})
        row["Blob"] = blob_name

    def _get_text(self, row: TableEntity) -> str:
        blob = row.get("Blob")
        if not blob:
            return str(row.get("Body") or "null")
        if self._container is None:
            raise LedgerError(f"row {row['PartitionKey']}/{row['RowKey']} points to blob {blob}; no blob storage given")
        try:
            data: bytes = self._containers().download_blob(str(blob)).readall()
        except ResourceNotFoundError as exc:
            raise LedgerError(f"blob {blob} of row {row['PartitionKey']}/{row['RowKey']} is missing") from exc
        return data.decode()

    def _delete_blob(self, name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):  # already gone: another instance purged it
            self._containers().delete_blob(name)

    def _tables(self) -> TableClient:
        if not self._table_ready:
            with self._lock:
                if not self._table_ready:
                    _create(self._table.create_table, f"table {self._table.table_name}")
                    self._table_ready = True
        return self._table

    def _containers(self) -> ContainerClient:
        if self._container is None:
            raise LedgerError("no blob storage was given to the ledger")
        if not self._container_ready:
            with self._lock:
                if not self._container_ready:
                    _create(self._container.create_container, f"container {self._container.container_name}")
                    self._container_ready = True
        return self._container


def _create(create: Callable[[], Any], what: str) -> None:
    """Create a table or container; one that exists already (another instance won the race) is fine."""
    try:
        create()
    except ResourceExistsError:
        pass
    except HttpResponseError as exc:
        if exc.status_code != 403:
            raise
        # An identity without the right to create may still use one that infrastructure created.
        log.warning("may not create %s (%s); assuming it exists", what, exc.reason)
