"""Who runs what: claims (exactly-once effect), leases (one run per group at a time) and queued jobs."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from .store import (
    SAFE_KEY,
    LedgerError,
    Store,
    etag_of,
    insert_or_take_over,
    key,
    log,
    parse_time,
    resource_hash,
    utc,
)

ClaimStatus = Literal["running", "done", "released"]


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


class ClaimLost(LedgerError):
    """:meth:`Ledger.complete` found the claim taken over after it expired; the report was still saved."""

    def __init__(self, claim: Claim, report_id: str) -> None:
        super().__init__(f"the claim on {claim.resource_id} ({claim.key}) by {claim.owner} was taken over; "
                         f"report {report_id} saved, the claim row left to its new owner")
        self.report_id = report_id


def _stage_left(row: TableEntity) -> str | None:
    """The stage a claim's previous owner reached, where a new owner can resume it."""
    if row.get("Status") == "done":
        return None  # a finished run left nothing to resume
    return str(row.get("Stage") or "") or None


def _job_partition(job_id: str) -> str:
    return "job-" + key(job_id)


class Coordination(Store):
    """Claims, leases and jobs: the conditional writes that let many instances share the work."""

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
        at = utc(now)
        rk = key(ident)
        row = {
            "PartitionKey": "claim-" + resource_hash(resource_id), "RowKey": rk, "Kind": "claim",
            "ResourceId": resource_id, "Key": ident, "Status": "running", "Owner": owner, "At": at,
            "ExpiresAt": at + self.claim_ttl, "Takeovers": 0,
        }

        def take_over(existing: TableEntity) -> dict[str, Any] | None:
            status = existing.get("Status")
            expires = parse_time(existing.get("ExpiresAt"))
            if (status == "done" and not force) or (status == "running" and expires is not None and expires > at):
                return None
            return {**row, "Takeovers": int(existing.get("Takeovers") or 0) + 1,
                    "PreviousOwner": str(existing.get("Owner") or ""), "Stage": _stage_left(existing) or ""}

        written = insert_or_take_over(self._tables(), row, take_over)
        if written is None:
            return None
        claim = Claim(resource_id, rk, owner, written.etag, at, at + self.claim_ttl)
        if written.replaced is None:
            return claim
        previous = str(written.replaced.get("Owner") or "") or None
        log.info("claim on %s (%s) taken over from %s by %s", resource_id, ident, previous, owner)
        return replace(claim, taken_over_from=previous, previous_stage=_stage_left(written.replaced))

    def mark_done(self, claim: Claim, report_id: str, *, now: datetime | None = None) -> None:
        """Mark the claim done with its stored report (later claims get None).

        Raises :class:`ClaimLost` (carrying ``report_id``) when the claim expired and another
        instance took it over meanwhile: the new owner's row is left alone.
        """
        done = {**self._claim_row(claim), "Status": "done", "ReportId": report_id, "CompletedAt": utc(now)}
        try:
            self._tables().update_entity(
                done, mode=UpdateMode.MERGE, etag=claim.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ClaimLost(claim, report_id) from exc

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
        at = utc(now)
        row = {**self._claim_row(claim), **fields, "ExpiresAt": at + self.claim_ttl}
        try:
            updated = self._tables().update_entity(
                row, mode=UpdateMode.MERGE, etag=claim.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ClaimLost(claim, "") from exc
        return replace(claim, etag=etag_of(updated), expires_at=at + self.claim_ttl)

    @staticmethod
    def _claim_row(claim: Claim) -> dict[str, Any]:
        return {"PartitionKey": "claim-" + resource_hash(claim.resource_id), "RowKey": claim.key}

    # --- leases: one run per container group at a time -------------------------------------------

    def lease(self, resource_id: str, owner: str, *, now: datetime | None = None) -> bool:
        """Take (or renew) the group's lease: two failures of one group are not fixed and redeployed at
        once. False while another owner holds an unexpired lease."""
        at = utc(now)
        row: dict[str, Any] = {"PartitionKey": "lease-" + resource_hash(resource_id), "RowKey": "group",
                               "Kind": "lease", "ResourceId": resource_id, "Owner": owner, "At": at,
                               "ExpiresAt": at + self.claim_ttl}

        def take_over(existing: TableEntity) -> dict[str, Any] | None:
            expires = parse_time(existing.get("ExpiresAt"))
            if existing.get("Owner") != owner and expires is not None and expires > at:
                return None
            return row

        return insert_or_take_over(self._tables(), row, take_over) is not None

    def release_lease(self, resource_id: str, owner: str) -> None:
        """Give the lease up, if it is still this owner's."""
        table = self._tables()
        try:
            existing = table.get_entity("lease-" + resource_hash(resource_id), "group")
            if existing.get("Owner") == owner:
                table.delete_entity(existing, etag=etag_of(existing), match_condition=MatchConditions.IfNotModified)
        except (ResourceNotFoundError, ResourceModifiedError):
            pass

    # --- queued jobs (replays answered 202) ------------------------------------------------------

    def put_job(self, job_id: str, resource_id: str, *, parts: int = 1, now: datetime | None = None) -> None:
        """Record a queued job of ``parts`` queue messages, so its status can be asked for before
        its reports exist. Each part records its reports with :meth:`finish_job`."""
        self._tables().upsert_entity({"PartitionKey": _job_partition(job_id), "RowKey": "job", "Kind": "job",
                                      "ResourceId": resource_id, "Status": "queued", "Parts": parts,
                                      "At": utc(now)})

    def finish_job(self, job_id: str, report_ids: list[str], *, part: int = 0, now: datetime | None = None) -> None:
        """One part of a job is done (idempotent: a redelivered part overwrites its own row)."""
        self._tables().upsert_entity({"PartitionKey": _job_partition(job_id), "RowKey": f"part-{part:05d}",
                                      "Kind": "job", "ReportIds": json.dumps(report_ids), "At": utc(now)})

    def fail_job(self, job_id: str, error: str, *, queued_parts: int, now: datetime | None = None) -> None:
        """Not every part could be queued: only ``queued_parts`` will ever finish."""
        self._tables().upsert_entity({"PartitionKey": _job_partition(job_id), "RowKey": "job", "Status": "failed",
                                      "Error": error, "Parts": queued_parts, "At": utc(now)},
                                     mode=UpdateMode.MERGE)

    def job(self, job_id: str) -> dict[str, Any] | None:
        """``{"id", "status", "resourceId", "parts", "finished", "reportIds", "error"}`` of a job, or None.

        ``status`` is ``queued`` until every queued part has finished, then ``done`` (``failed``
        when some parts could not be queued)."""
        if not SAFE_KEY.fullmatch(job_id):
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
        self._containers().upload_blob(name, text.encode(), overwrite=True, metadata={"at": utc(now).isoformat()})
        return name

    def get_payload(self, name: str) -> str:
        if not name.startswith("payloads/"):
            raise LedgerError(f"{name!r} is not a job payload")
        try:
            data: bytes = self._containers().download_blob(name).readall()
        except ResourceNotFoundError as exc:
            raise LedgerError(f"job payload {name} is missing") from exc
        return data.decode()
