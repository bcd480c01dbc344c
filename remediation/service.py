"""The function app's behaviour behind its triggers: claims, runs, reports, notifications.

``function_app.py`` only binds triggers to these methods. One :class:`Service` per worker
process, built by :func:`get_service` from app settings (tests hand in their own with
:func:`set_service`).

Delivery is at least once and the app scales out, so every run is claimed in the ledger first
(keyed by the failed write's correlation id) by its journal (:class:`LedgerJournal`, which holds
the claim for the run); a replay claims apart from the Event Grid delivery of the same failure.
A run whose failure a retry may clear is released and raised, so the queue redelivers it; on the
last delivery its failed report is kept instead.

Every failure ends in a stored report, and a notification where one is due, whatever the path:

- a run that finished (any outcome) stores its report; only a finished remediation closes the
  claim (``FINISHED_OUTCOMES``), so a skipped or failed run leaves the failure open to the next
  delivery or replay;
- a run that broke off, or whose report says a retry may help, is raised for the queue to
  redeliver until its last delivery, which stores the ``failed`` report;
- a failure another run holds (its claim, or the group's lease) is not dropped: the job is
  re-enqueued to come back later (:class:`Busy`, :func:`requeue_delay`), at most ``max_requeues``
  times, then stored as ``failed`` and notified. The first wait is short and each one doubles, up
  to the holder's expiry: a duplicate that arrived while its failure's run was going on comes back
  seconds after that run ends (and is then a true duplicate), while a crashed holder is still
  outlasted, since the waits reach its expiry, where its claim or lease can be taken over. Such a
  job is re-enqueued rather than ended even though the holder may itself be retried by the queue:
  the claim does not say whether the holder has a delivery left (it may be on its last one, or an
  inline replay, or the sweep), and a holder that ends ``skipped`` or ``failed`` gives the failure
  back for the next delivery, which the re-enqueued job then is;
- a job the queue gave up on (the poison queue) is stored as ``failed`` and notified, unless a run
  of its failure finished or is still going;
- only a true duplicate, a delivery of a failure whose run finished, ends ``skipped`` without a
  report of its own: it is logged with the finished run's report id.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenCredential

from . import telemetry
from .azure.errors import describe
from .errors import InputError
from .journal import NoJournal, RunJournal
from .ledger import Ledger, LedgerJournal
from .model import FailureSignal, Skip, Trigger
from .notify import Notifier
from .replay_request import TooLarge, read_replay
from .report import validate_report
from .resource_ids import parse_resource_id
from .settings import Settings
from .signal import decode_json, parse_event, parse_events, scrub_event, signal_for_resource
from .storage import MAX_MESSAGE_BYTES, HostStorage, JobQueue, encoded_size, max_dequeue_count

DEFAULT_MAX_REQUEUES = 16
"""How often a job waits for a group (or a failure) another run holds (:func:`requeue_delay`). The
first six waits (2 to 64 s) last 126 s in all; each later one (128 s and more, unless the holder's
expiry comes first) lasts at least half the claim TTL while the holder lives, since it renews at
half: with the default TTL (180 s) the sixteen waits last at least 1,026 s, past any run's own
budgets (600 s redeploy and 120 s Activity Log by default), and no shorter than the ten waits until
the holder's expiry (at least 900 s) that they replaced."""
FIRST_REQUEUE_DELAY_SECONDS = 2
"""The first wait for a run that holds the job's failure or group; each later one doubles."""
REQUEUE_MARGIN_SECONDS = 2
"""Past the holder's expiry, so the job comes back to a lease that is free unless renewed."""
MAX_REQUEUE_DELAY_SECONDS = 6 * 3600
"""Below the queue message's time to live (7 days by default), whatever a holder's expiry says."""
ENQUEUE_WORKERS = 8
"""Queue sends at once for a replay's messages."""

if TYPE_CHECKING:  # the Azure SDKs load when a run needs them, not when an event is queued
    from .azure.clients import AzureClients
    from .azure.gather import GatherOptions
    from .azure.redeploy import RedeployOptions
    from .engine import Engine

log = logging.getLogger("remediation.service")


class TransientFailure(RuntimeError):
    """The run could not finish for a reason a retry may clear; the claim was released."""

    def __init__(self, report: Mapping[str, Any]) -> None:
        super().__init__(str(report.get("error") or "transient failure"))
        self.report = dict(report)


class Busy(RuntimeError):
    """Another run holds the failure's claim or the group's lease until ``until``: the run did not
    start (and gave back any claim it took), so its job must wait and come back, not end."""

    def __init__(self, reason: str, until: datetime | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.until = until


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: Any


@dataclass
class Service:
    settings: Settings
    clients: AzureClients
    ledger: Ledger
    notifier: Notifier
    gather_options: GatherOptions = field(default_factory=lambda: _gather_options())
    redeploy_options: RedeployOptions = field(default_factory=lambda: _redeploy_options())
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    jobs: JobQueue | None = None
    """The jobs queue, for replays that cannot finish within an HTTP response (None: run inline)."""
    max_dequeue: int = field(default_factory=max_dequeue_count)
    """host.json ``queues.maxDequeueCount``: the last delivery keeps its failed report instead of raising."""
    max_requeues: int = DEFAULT_MAX_REQUEUES
    """How often a job is re-enqueued to wait for a run that holds its failure or group."""

    # -- building -----------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, credential: TokenCredential | None = None) -> Service:
        """The production wiring: app settings, the managed identity, the function's storage."""
        from azure.identity import DefaultAzureCredential

        from .azure.clients import AzureClients

        source = os.environ if env is None else env
        telemetry.configure(source)
        settings = Settings.from_env(source)
        cred: TokenCredential = credential or DefaultAzureCredential()
        clients = AzureClients(cred, arm_endpoint=settings.arm_endpoint, verify=settings.arm_ca_bundle or True,
                               registry_endpoint_template=settings.acr_endpoint_template)
        storage = HostStorage.from_env(source)
        ledger = _ledger_from(storage, settings, cred)
        jobs = JobQueue(storage.queue_client(settings.jobs_queue, cred))
        return cls.assemble(settings, clients, ledger, credential=cred, jobs=jobs,
                            max_dequeue=max_dequeue_count(source))

    @classmethod
    def assemble(cls, settings: Settings, clients: AzureClients, ledger: Ledger, *,
                 credential: TokenCredential | None = None, **options: Any) -> Service:
        notifier = Notifier(
            settings, credential=credential,
            cooldown=lambda rid, outcome: ledger.notify_allowed(rid, settings.notify_cooldown_minutes,
                                                                outcome=outcome),
            storm=lambda: ledger.storm_count(max(settings.notify_cooldown_minutes, 1)),
            storm_threshold=settings.storm_threshold,
        )
        gather = options.pop("gather_options", None) or _gather_options(
            subscriptions=_subscriptions_of(settings.allowed_scopes),
            activity_log_wait_seconds=float(settings.activity_log_wait_seconds))
        gather.snapshot = ledger.last_snapshot
        redeploy = options.pop("redeploy_options", None) or _redeploy_options(
            budget_seconds=float(settings.redeploy_budget_seconds))
        return cls(settings, clients, ledger, notifier, gather, redeploy, **options)

    def _engine(self, settings: Settings, journal: RunJournal | None = None) -> Engine:
        """An engine for one run, recording in ``journal`` (none: a run that records nothing)."""
        from .engine import Engine

        return Engine(self.clients, settings, gather_options=self.gather_options,
                      redeploy_options=self.redeploy_options, journal=journal or NoJournal())

    def _journal(self, settings: Settings) -> LedgerJournal:
        return LedgerJournal(self.ledger, owner=self.owner, attempt_window_minutes=settings.attempt_window_minutes)

    # -- one run ------------------------------------------------------------------------------

    def handle(self, item: FailureSignal | Skip, *, trigger: Trigger, dry_run: bool | None = None,
               final_attempt: bool = True) -> dict[str, Any]:
        """Claim, run, notify, store. Raises :class:`TransientFailure` when a retry should follow,
        and :class:`Busy` when another run holds the failure or its group (nothing ran)."""
        settings = self.settings.with_overrides({"REMEDIATION_DRY_RUN": "true"}) if dry_run else self.settings
        if isinstance(item, Skip):
            report = self._engine(settings).run(item, trigger=trigger)
            report["id"] = self.ledger.save_report(report)
            return report
        journal = self._journal(settings)
        if not settings.dry_run:  # a dry run writes nothing, so it needs no claim
            held = journal.claim(item, replay=trigger == "replay")
            if held is not None and held.finished:
                log.info("duplicate delivery skipped", extra={"resourceId": item.resource_id,
                                                              "correlationId": item.correlation_id,
                                                              "reportId": held.report_id})
                done = f" (report {held.report_id})" if held.report_id else ""
                return self._engine(settings).run(
                    Skip(f"a run of this failure finished already{done}: duplicate delivery", item.resource_id),
                    trigger=trigger)
            if held is not None:
                raise Busy("another run of this failure is going on", held.until)
            held = journal.lease()
            if held is not None:
                journal.release()
                raise Busy("another remediation of this container group is running", held.until)
        try:
            return self._run(item, settings, trigger, journal, final_attempt)
        finally:
            journal.close()

    def _run(self, item: FailureSignal, settings: Settings, trigger: Trigger, journal: LedgerJournal,
             final_attempt: bool) -> dict[str, Any]:
        try:
            report = self._engine(settings, journal).run(item, trigger=trigger,
                                                         resume_redeploy=journal.resumes_after_fix)
        except Exception as exc:  # the engine reports what it expects; this is what it did not
            log.exception("remediation run broke off", extra={"resourceId": item.resource_id,
                                                              "correlationId": item.correlation_id})
            journal.release()
            if not final_attempt:
                raise TransientFailure({"error": f"the run broke off: {type(exc).__name__}"}) from exc
            report = self._engine(settings).failed(item, trigger=trigger, error=f"the run broke off: {describe(exc)}")
        if report.get("retryable") and not final_attempt:
            journal.release()
            raise TransientFailure(report)
        report["id"] = journal.complete(report)
        if report["outcome"] != "skipped":
            self._notify(report)
        telemetry.record_report(report, event_time=item.event_time)
        return report

    def _notify(self, report: dict[str, Any]) -> None:
        """Notify about a report already stored (a slow channel cannot lose it), then store it again
        under the same id with what each channel said."""
        report["notifications"] = self.notifier.send(report)
        validate_report(report)
        self.ledger.save_report({key: value for key, value in report.items() if key != "id"})

    # -- triggers -----------------------------------------------------------------------------

    def job_for_event(self, raw_event: str | bytes) -> str | None:
        """Event Grid trigger: the queue message for one delivered event, or None when there is
        nothing to queue (fast; the queue does the work).

        ``raw_event`` is the event's JSON as delivered, so the job keeps every wire field. Events
        that are not ours end in a stored ``skipped`` report; malformed ones are logged, since
        redelivering them cannot help.
        """
        try:
            payload = decode_json(raw_event, "the event")
            if not isinstance(payload, dict):
                raise InputError("the event is not a JSON object")
            item = parse_event(payload)
        except (InputError, ValueError) as exc:
            log.error("malformed event dropped: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None
        if isinstance(item, Skip):
            self.handle(item, trigger="eventgrid")
            return None
        return self.queue_message({"kind": "event", "event": scrub_event(payload), "trigger": "eventgrid"})

    def queue_message(self, job: Mapping[str, Any]) -> str:
        """The queue message for ``job``: the job itself, or, past the 64 KiB limit, the name of
        the blob that holds it (Event Grid events may be up to 1 MB)."""
        text = json.dumps(job, separators=(",", ":"))
        if encoded_size(text) <= MAX_MESSAGE_BYTES:
            return text
        return json.dumps({"kind": "payload", "payload": self.ledger.put_payload(text),
                           "jobId": job.get("jobId"), "part": job.get("part")})

    def _job_of(self, message: str) -> dict[str, Any]:
        job = json.loads(message)
        if isinstance(job, dict) and job.get("kind") == "payload":
            job = json.loads(self.ledger.get_payload(str(job["payload"])))
        if not isinstance(job, dict):
            raise InputError("the queue message is not a job")
        return job

    def process_message(self, message: str, *, dequeue_count: int = 1) -> list[dict[str, Any]]:
        """Queue trigger: run the job of one queue message."""
        return self.process_job(self._job_of(message), dequeue_count=dequeue_count)

    @staticmethod
    def _items(job: Mapping[str, Any]) -> list[tuple[FailureSignal | Skip, dict[str, Any]]]:
        """Each item of ``job`` with the job that runs it alone (to re-enqueue it on its own)."""
        if job.get("kind") == "resource":
            return [(signal_for_resource(str(job["resourceId"]), definition=job.get("definition")), dict(job))]
        if job.get("kind") == "events":
            alone = {k: v for k, v in job.items() if k not in ("events", "jobId", "part")}
            return [(item, {**alone, "kind": "event", "event": event})
                    for item, event in zip(parse_events(job["events"]), job["events"], strict=True)]
        return [(parse_event(job["event"]), dict(job))]

    @staticmethod
    def _trigger(job: Mapping[str, Any]) -> Trigger:
        return "replay" if job.get("trigger") == "replay" else "eventgrid"

    def process_job(self, job: Mapping[str, Any], *, dequeue_count: int = 1) -> list[dict[str, Any]]:
        """Run a job (an event, events, or a resource) and record its reports.

        An item another run holds is re-enqueued to come back after that run (:meth:`_wait`); its
        entry is then ``{"requeued": why}`` (with the job's ``id`` and ``status`` path, where it has
        one) rather than a report, and the job's part is finished by the message that comes back."""
        final = dequeue_count >= self.max_dequeue
        trigger = self._trigger(job)
        results: list[dict[str, Any]] = []
        waiting = False
        for item, alone in self._items(job):
            try:
                results.append(self.handle(item, trigger=trigger, dry_run=bool(job.get("dryRun")),
                                           final_attempt=final))
            except Busy as busy:
                entry = self._wait(alone, item, trigger, busy, final_attempt=final)
                waiting = waiting or ("requeued" in entry and "jobId" in alone)
                results.append(entry)
        if not waiting:
            self._finish_part(job, results)
        return results

    def _wait(self, job: dict[str, Any], item: FailureSignal | Skip, trigger: Trigger, busy: Busy, *,
              final_attempt: bool) -> dict[str, Any]:
        """Re-enqueue ``job`` to come back after :func:`requeue_delay` (soon at first, at the
        holder's expiry at the latest); after ``max_requeues`` waits, the stored ``failed`` report."""
        count = int(job.get("requeues") or 0)
        if self.jobs is None or count >= self.max_requeues:
            why = (f"{busy.reason}; the job waited for it {count} time(s) and gave up: "
                   "replay the failure once that run is over")
            return self._store_failed(item, trigger, why)
        seconds = requeue_delay(count, busy.until, datetime.now(UTC))
        queued = {**job, "requeues": count + 1}
        if trigger == "replay" and not queued.get("jobId"):  # an inline replay: its caller follows the job
            queued.update({"jobId": str(uuid.uuid4()), "part": 0})
            self.ledger.put_job(str(queued["jobId"]), item.resource_id or "")
        try:
            self.jobs.send(self.queue_message(queued), visibility_timeout=seconds)
        except Exception as exc:
            error = f"{busy.reason}, and the job could not be re-enqueued: {describe(exc)}"
            if not final_attempt:
                raise TransientFailure({"error": error}) from exc
            return self._store_failed(item, trigger, error)
        log.info("job re-enqueued to wait for another run", extra={
            "resourceId": item.resource_id, "reason": busy.reason, "delaySeconds": seconds, "requeues": count + 1})
        if not queued.get("jobId"):
            return {"requeued": busy.reason}
        return {"id": queued["jobId"], "status": f"/api/remediations/{queued['jobId']}", "requeued": busy.reason}

    def _store_failed(self, item: FailureSignal | Skip, trigger: Trigger, error: str,
                      journal: LedgerJournal | None = None) -> dict[str, Any]:
        """The ``failed`` report of a failure no run could finish: stored (through ``journal``,
        which gives its claim back, where the caller holds one), then notified."""
        report = self._engine(self.settings).failed(item, trigger=trigger, error=error)
        report["id"] = journal.complete(report) if journal else self.ledger.save_report(report)
        self._notify(report)
        telemetry.record_report(report, event_time=item.event_time if isinstance(item, FailureSignal) else None)
        return report

    def process_poisoned(self, message: str) -> list[dict[str, Any]]:
        """Poison-queue trigger: a job the queue gave up on after ``max_dequeue`` deliveries. Its
        failure is stored and notified, so no failure of a real deployment goes unseen, unless a
        run of the same failure finished (its report stands) or holds its claim (the job is
        re-enqueued to wait for that run, as :meth:`process_job` does)."""
        why = (f"the remediation job failed {self.max_dequeue} deliveries (host.json maxDequeueCount) "
               "and was moved to the poison queue")
        telemetry.record_poisoned()
        try:
            job = self._job_of(message)
            items = self._items(job)
        except Exception as exc:  # an unreadable job: nothing to attribute it to but the log
            log.error("poisoned job could not be read: %s", describe(exc))
            return []
        trigger = self._trigger(job)
        reports = []
        waiting = False
        for item, alone in items:
            if isinstance(item, Skip):
                continue
            journal = self._journal(self.settings)
            held = None if job.get("dryRun") else journal.claim(item, replay=trigger == "replay")
            if held is not None and held.finished:
                log.info("poisoned job's failure was finished by another run", extra={
                    "resourceId": item.resource_id, "correlationId": item.correlation_id, "reportId": held.report_id})
            elif held is not None:  # a run holds it, or died holding it: wait for that run, as any job does
                busy = Busy("another run of this failure is going on", held.until)
                reports.append(self._wait(alone, item, trigger, busy, final_attempt=True))
                waiting = waiting or "jobId" in alone
            else:
                reports.append(self._store_failed(item, trigger, why, journal))
        if not waiting:
            self._finish_part(job, reports)
        return reports

    def _finish_part(self, job: Mapping[str, Any], reports: list[dict[str, Any]]) -> None:
        if job.get("jobId"):
            self.ledger.finish_job(str(job["jobId"]), [str(r.get("id", "")) for r in reports if "requeued" not in r],
                                   part=int(job.get("part") or 0))

    def replay(self, raw_body: bytes, *, query: Mapping[str, str] | None = None) -> HttpAnswer:
        """``POST /api/replay``: the body read within the limits of CONTRACT.md §5
        (:mod:`remediation.replay_request`: 413 over them, 400 for anything unreadable, each one
        line, before anything is stored or queued); then run now when it fits in an HTTP response
        (always, when every item is skipped), else queue one message per event and answer 202. An
        event whose group another run holds is queued to wait for it (202 for a single event; in an
        array, its entry is the job's ``{"id", "status"}``)."""
        try:
            request = read_replay(raw_body, query or {})
        except TooLarge as exc:
            return HttpAnswer(413, {"error": str(exc)})
        except InputError as exc:
            return HttpAnswer(400, {"error": str(exc)})
        runs = [i for i in request.items if isinstance(i, FailureSignal) and self.settings.allows_scope(i.resource_id)]
        dry_run = request.dry_run
        per_item = self.settings.activity_log_wait_seconds + (0 if dry_run else self.settings.redeploy_budget_seconds)
        if self.jobs is None or per_item * len(runs) <= self.settings.inline_budget_seconds:
            reports = [r for job in request.jobs for r in self.process_job(job, dequeue_count=self.max_dequeue)]
            if not request.many and "requeued" in reports[0]:  # it waits for another run of the group: queued
                return HttpAnswer(202, reports[0])
            return HttpAnswer(200, reports if request.many else reports[0])
        resource_id = next((i.resource_id for i in request.items if i.resource_id), "")
        return self._enqueue(self.jobs, [dict(job) for job in request.jobs], resource_id)

    def _enqueue(self, queue: JobQueue, jobs: list[dict[str, Any]], resource_id: str) -> HttpAnswer:
        """Queue each job as its own message under one job id; what cannot be queued is said.

        Queue Storage takes one message a request, so the messages after the first (which also
        makes the queue where it is missing) go out on ``ENQUEUE_WORKERS`` threads: 100 events
        must be accepted well within a second, not after 100 round trips in a row."""
        job_id = str(uuid.uuid4())
        messages = []
        for part, job in enumerate(jobs):
            job.update({"jobId": job_id, "part": part})
            messages.append(self.queue_message(job))
        self.ledger.put_job(job_id, resource_id, parts=len(messages))

        def send(message: str) -> Exception | None:
            try:
                queue.send(message)
            except Exception as exc:  # said in the answer and the job's row, below
                return exc
            return None

        problems = [send(messages[0])]
        if problems[0] is None and len(messages) > 1:
            with ThreadPoolExecutor(max_workers=min(ENQUEUE_WORKERS, len(messages) - 1)) as pool:
                problems += list(pool.map(send, messages[1:]))
        failed = [p for p in problems if p is not None]
        if failed:
            sent = len(problems) - len(failed)
            error = f"{sent} of {len(messages)} events were queued; the rest could not be: {describe(failed[0])}"
            log.error("replay %s only partly queued: %s", job_id, error)
            self.ledger.fail_job(job_id, error, queued_parts=sent)
            return HttpAnswer(503, {"error": error, "id": job_id, "status": f"/api/remediations/{job_id}"})
        return HttpAnswer(202, {"id": job_id, "status": f"/api/remediations/{job_id}", "events": len(messages)})

    def remediation(self, report_id: str) -> HttpAnswer:
        """``GET /api/remediations/{id}``: a stored report, or a queued job's progress."""
        report = self.ledger.get_report(report_id)
        if report is not None:
            return HttpAnswer(200, {**report, "id": report_id})
        job = self.ledger.job(report_id)
        if job is None:
            return HttpAnswer(404, {"error": f"no remediation with id {report_id!r}"})
        progress = {"id": report_id, "status": job["status"], "finished": job["finished"], "of": job["parts"]}
        if job["status"] == "queued":
            return HttpAnswer(202, progress)
        found = [r for r in (self.ledger.get_report(i) for i in job["reportIds"]) if r is not None]
        if job["status"] == "failed":
            return HttpAnswer(200, {**progress, "error": job["error"], "reports": found})
        return HttpAnswer(200, found[0] if len(found) == 1 else found)

    def remediations_for(self, resource_id: str | None) -> HttpAnswer:
        """``GET /api/remediations?resourceId=…``: the group's reports, newest first."""
        if not resource_id:
            return HttpAnswer(400, {"error": "the resourceId query parameter is required"})
        return HttpAnswer(200, self.ledger.reports_for(resource_id, limit=100))

    def sweep(self) -> list[dict[str, Any]]:
        """Timer trigger: check every container group in the allowed scopes before anyone deploys again."""
        if not self.settings.sweep_enabled:
            return []
        if not self.settings.allowed_scopes:
            log.warning("the sweep needs REMEDIATION_ALLOWED_SCOPES to know where to look; nothing swept")
            return []
        from .azure.inventory import groups_pulling_with_identity

        reports = []
        for group_id in groups_pulling_with_identity(self.clients, self.settings.allowed_scopes):
            signal = signal_for_resource(group_id, schema="sweep")
            try:
                report = self.handle(signal, trigger="sweep")
            except Busy as busy:  # a remediation of the group is going on; the next sweep looks again
                log.info("sweep passed a busy group: %s", busy.reason, extra={"resourceId": group_id})
                continue
            if report["causes"] or report["outcome"] not in ("diagnosed", "skipped"):
                reports.append(report)
        return reports

    def purge(self) -> dict[str, int]:
        """Timer trigger: drop ledger rows and report blobs older than REMEDIATION_RETENTION_DAYS."""
        removed = self.ledger.purge(self.settings.retention_days)
        log.info("ledger purged", extra={"removed": removed})
        return removed


def requeue_delay(requeues: int, until: datetime | None, now: datetime) -> int:
    """Seconds a job waits, after ``requeues`` earlier waits, for a run that holds its failure or
    group until ``until``: :data:`FIRST_REQUEUE_DELAY_SECONDS`, doubling with each wait, but never
    past the holder's expiry (plus :data:`REQUEUE_MARGIN_SECONDS`), where a crashed holder's claim
    or lease can be taken over, nor past :data:`MAX_REQUEUE_DELAY_SECONDS`."""
    left = (until - now).total_seconds() if until else 0.0
    past_expiry = max(int(left) + 1, 0) + REQUEUE_MARGIN_SECONDS
    backoff = FIRST_REQUEUE_DELAY_SECONDS << min(requeues, 32)
    return min(backoff, past_expiry, MAX_REQUEUE_DELAY_SECONDS)


def _gather_options(**options: Any) -> GatherOptions:
    from .azure.gather import GatherOptions

    return GatherOptions(**options)


def _redeploy_options(**options: Any) -> RedeployOptions:
    from .azure.redeploy import RedeployOptions

    return RedeployOptions(**options)


def _subscriptions_of(scopes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(parse_resource_id(s).subscription.lower() for s in scopes))


def _ledger_from(storage: HostStorage, settings: Settings, credential: TokenCredential) -> Ledger:
    options: dict[str, Any] = {"table_name": settings.ledger_table, "retention_days": settings.retention_days,
                               "claim_ttl": timedelta(seconds=settings.claim_ttl_seconds)}
    if storage.connection_string:
        return Ledger.from_connection_string(storage.connection_string, **options)
    return Ledger.from_endpoints(storage.table_endpoint, storage.credential(credential),
                                 blob_endpoint=storage.blob_endpoint, **options)


_service: Service | None = None
_service_lock = threading.Lock()


def get_service() -> Service:
    """The worker's service, built on first use from the app settings."""
    global _service
    with _service_lock:
        if _service is None:
            _service = Service.from_env()
        return _service


def set_service(service: Service | None) -> None:
    """Use ``service`` for the triggers (tests, and hosts that wire their own)."""
    global _service
    with _service_lock:
        _service = service
