"""Who runs what: claims (exactly-once effect), leases (one run per group at a time) and queued jobs."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from ..journal import Held
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
FINISHED_OUTCOMES = frozenset({"remediated", "fixed-awaiting-redeploy", "diagnosed"})
"""The outcomes that close a claim (``done``): the run finished the remediation. ``remediated`` and
``fixed-awaiting-redeploy`` applied what was allowed; ``diagnosed`` decided that nothing may be, and
what is left needs a person. Every other outcome gives the claim back (``released``): ``skipped``
(out of scope, opted out, loop guard, not an image-pull failure, already healthy), ``failed`` (the
run could not finish) and ``dry-run`` (nothing written), so the next delivery or replay of the same
failure runs again. A run fed a forged or premature event therefore cannot make the genuine
delivery a duplicate."""
REPLAY_KEY_PREFIX = "replay|"
"""Replays claim apart from Event Grid deliveries; ``|`` never occurs in a key :func:`key` makes."""


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
    previous_stage_at: datetime | None = None
    """When the previous owner reached ``previous_stage`` (as the claim row now says)."""


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


def _holds(row: TableEntity, at: datetime, force: bool) -> Held | None:
    """What keeps a new run from the claim ``row``, or None when it may be taken over."""
    expires = parse_time(row.get("ExpiresAt"))
    if row.get("Status") == "done" and not force:
        return Held(None, str(row.get("ReportId") or "") or None)
    if row.get("Status") == "running" and expires is not None and expires > at:
        return Held(expires)
    return None


def claim_key(correlation_id: str | None, event_id: str | None = None, *, replay: bool = False) -> str:
    """The RowKey of a failure's claim: its correlation id (else its event id), made key-safe; a
    replay's claim has its own key, so a replay never takes or closes the one deliveries need."""
    ident = correlation_id or event_id
    if not ident:
        raise ValueError("a claim needs a correlation id or an event id")
    return (REPLAY_KEY_PREFIX if replay else "") + key(ident)


def _job_partition(job_id: str) -> str:
    return "job-" + key(job_id)


class FinishedClaims:
    """The claims this instance lately saw finished (``done``), by their keys, with their report ids.

    A first filter for duplicate deliveries, never the decision: a claim missing here is read from
    the ledger, and only a finished claim is kept, since without ``force`` a finished claim stays
    finished. Bounded in size and age, so a long storm does not grow the instance's memory.
    """

    def __init__(self, *, size: int = 10_000, ttl_seconds: float = 600.0) -> None:
        self.size = size
        self.ttl_seconds = ttl_seconds
        self._rows: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, partition: str, row: str, report_id: str) -> None:
        with self._lock:
            self._rows[(partition, row)] = (time.monotonic() + self.ttl_seconds, report_id)
            self._rows.move_to_end((partition, row))
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)

    def get(self, partition: str, row: str) -> str | None:
        """The report id of a claim seen finished ("" when it has none), or None when not known."""
        with self._lock:
            found = self._rows.get((partition, row))
            if found is None:
                return None
            if found[0] < time.monotonic():
                del self._rows[(partition, row)]
                return None
            return found[1]

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


class Coordination(Store):
    """Claims, leases and jobs: the conditional writes that let many instances share the work."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._finished = FinishedClaims()

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
        replay: bool = False,
    ) -> Claim | None:
        """Claim the remediation of one failure, or None when someone else has it or it is done.

        The failure is keyed by ``correlation_id`` (or ``event_id`` when there is none), so every
        delivery of the same event, and every event of the same failed write, maps to one row;
        ``replay`` claims a row of its own for the same failure (:func:`claim_key`). A claim that
        was released (:meth:`abandon`) or expired (older than ``claim_ttl``) is taken over; among
        concurrent takers exactly one wins. ``force`` (a person's replay) also takes over a
        finished claim, but never one that is running and not expired. :meth:`claim_held` says
        why a claim was refused; :meth:`claim_or_held` does both at once.
        """
        return self._claim(resource_id, correlation_id, owner=owner, at=utc(now), event_id=event_id, force=force,
                           replay=replay, existing=None)

    def claim_or_held(
        self,
        resource_id: str,
        correlation_id: str | None,
        *,
        owner: str,
        now: datetime | None = None,
        event_id: str | None = None,
        force: bool = False,
        replay: bool = False,
    ) -> Claim | Held:
        """:meth:`claim`, or what holds the failure (:meth:`claim_held`) when it is refused.

        The claim row is read first, so a duplicate delivery of a finished or running failure costs
        one table read and no write; a failure this instance saw finished lately costs none
        (:class:`FinishedClaims`, never consulted with ``force``). A new claim costs the read and
        an insert.
        """
        at = utc(now)
        rk = claim_key(correlation_id, event_id, replay=replay)
        pk = "claim-" + resource_hash(resource_id)
        if not force:
            report_id = self._finished.get(pk, rk)
            if report_id is not None:
                return Held(None, report_id or None)
        try:
            existing: TableEntity | None = self._tables().get_entity(pk, rk)
        except ResourceNotFoundError:
            existing = None
        if existing is not None:
            held = _holds(existing, at, force)
            if held is not None:
                if held.finished:
                    self._finished.add(pk, rk, held.report_id or "")
                return held
        if existing is None:
            taken = self.claim(resource_id, correlation_id, owner=owner, now=at, event_id=event_id, force=force,
                               replay=replay)
        else:
            taken = self._claim(resource_id, correlation_id, owner=owner, at=at, event_id=event_id, force=force,
                                replay=replay, existing=existing)
        if taken is not None:
            return taken
        # another writer came first: what it left, or (come free meanwhile) a moment's wait
        return self.claim_held(resource_id, correlation_id, now=at, event_id=event_id, force=force,
                               replay=replay) or Held(at)

    def _claim(self, resource_id: str, correlation_id: str | None, *, owner: str, at: datetime,
               event_id: str | None, force: bool, replay: bool, existing: TableEntity | None) -> Claim | None:
        ident = correlation_id or event_id
        rk = claim_key(correlation_id, event_id, replay=replay)
        row = {
            "PartitionKey": "claim-" + resource_hash(resource_id), "RowKey": rk, "Kind": "claim",
            "ResourceId": resource_id, "Key": ident, "Status": "running", "Owner": owner, "At": at,
            "ExpiresAt": at + self.claim_ttl, "Takeovers": 0,
        }

        def take_over(existing: TableEntity) -> dict[str, Any] | None:
            if _holds(existing, at, force) is not None:
                return None
            stage = _stage_left(existing)
            taken = {**row, "Takeovers": int(existing.get("Takeovers") or 0) + 1,
                     "PreviousOwner": str(existing.get("Owner") or ""), "Stage": stage or ""}
            if stage and existing.get("StageAt") is not None:
                taken["StageAt"] = existing["StageAt"]  # the fix stays dated by the run that made it
            return taken

        written = insert_or_take_over(self._tables(), row, take_over, existing=existing)
        if written is None:
            return None
        claim = Claim(resource_id, rk, owner, written.etag, at, at + self.claim_ttl)
        if written.replaced is None:
            return claim
        previous = str(written.replaced.get("Owner") or "") or None
        log.info("claim on %s (%s) taken over from %s by %s", resource_id, ident, previous, owner)
        stage = _stage_left(written.replaced)
        # the row's StageAt as take_over wrote it: the previous run's, else this claim's own time
        stage_at = (parse_time(written.replaced.get("StageAt")) or at) if stage else None
        return replace(claim, taken_over_from=previous, previous_stage=stage, previous_stage_at=stage_at)

    def claim_held(
        self,
        resource_id: str,
        correlation_id: str | None,
        *,
        now: datetime | None = None,
        event_id: str | None = None,
        force: bool = False,
        replay: bool = False,
    ) -> Held | None:
        """Why :meth:`claim` (with the same arguments) refuses: a finished run (``until`` None, with
        its report id) or a live one until ``until``; None when the claim may be taken now."""
        try:
            row = self._tables().get_entity("claim-" + resource_hash(resource_id),
                                            claim_key(correlation_id, event_id, replay=replay))
        except ResourceNotFoundError:
            return None
        return _holds(row, utc(now), force)

    def fixed_at(self, resource_id: str, correlation_id: str | None, *, event_id: str | None = None,
                 held: Claim | None = None) -> datetime | None:
        """When a run of this failure, delivered or replayed, last applied its fixes without
        finishing (its claim, not done, is at stage ``fixed``); None when none did.

        ``held``: the caller's own claim of this failure (delivered or replayed). Its row is not
        read: while the caller holds it, the row says what the claim took over, no more."""
        table = self._tables()
        times: list[datetime] = []
        for replay in (False, True):
            rk = claim_key(correlation_id, event_id, replay=replay)
            if held is not None and held.key == rk:
                if held.previous_stage == "fixed" and held.previous_stage_at is not None:
                    times.append(held.previous_stage_at)
                continue
            try:
                row = table.get_entity("claim-" + resource_hash(resource_id), rk)
            except ResourceNotFoundError:
                continue
            at = parse_time(row.get("StageAt")) or parse_time(row.get("At"))
            if _stage_left(row) == "fixed" and at is not None:
                times.append(at)
        return max(times, default=None)

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
        row = self._claim_row(claim)
        self._finished.add(row["PartitionKey"], row["RowKey"], report_id)

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
        """Record how far the run got (e.g. ``"fixed"``) and when, and extend the claim; ClaimLost if
        taken over."""
        return self._merge_claim(claim, {"Stage": stage, "StageAt": utc(now)}, now)

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
        return self.take_lease(resource_id, owner, now=now) is not None

    def take_lease(self, resource_id: str, owner: str, *, now: datetime | None = None) -> str | None:
        """:meth:`lease`, answering the lease row's ETag (for :meth:`release_lease`), or None."""
        at = utc(now)
        row: dict[str, Any] = {"PartitionKey": "lease-" + resource_hash(resource_id), "RowKey": "group",
                               "Kind": "lease", "ResourceId": resource_id, "Owner": owner, "At": at,
                               "ExpiresAt": at + self.claim_ttl}

        def take_over(existing: TableEntity) -> dict[str, Any] | None:
            expires = parse_time(existing.get("ExpiresAt"))
            if existing.get("Owner") != owner and expires is not None and expires > at:
                return None
            return row

        written = insert_or_take_over(self._tables(), row, take_over)
        return None if written is None else written.etag

    def lease_held(self, resource_id: str, *, now: datetime | None = None) -> Held | None:
        """Until when another run holds the group's lease (:meth:`lease` refused); None when it is free."""
        try:
            row = self._tables().get_entity("lease-" + resource_hash(resource_id), "group")
        except ResourceNotFoundError:
            return None
        expires = parse_time(row.get("ExpiresAt"))
        return Held(expires) if expires is not None and expires > utc(now) else None

    def release_lease(self, resource_id: str, owner: str, *, etag: str | None = None) -> None:
        """Give the lease up, if it is still this owner's. ``etag``: the row's as this owner last
        wrote it (:meth:`take_lease`), so an unchanged lease is deleted without reading it first."""
        table = self._tables()
        pk = "lease-" + resource_hash(resource_id)
        if etag is not None:
            try:
                table.delete_entity({"PartitionKey": pk, "RowKey": "group"}, etag=etag,
                                    match_condition=MatchConditions.IfNotModified)
                return
            except ResourceNotFoundError:
                return
            except ResourceModifiedError:
                pass  # rewritten since: by this owner's renewal, or a taker's; the row says whose
        try:
            existing = table.get_entity(pk, "group")
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
