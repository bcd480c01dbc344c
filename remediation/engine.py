"""The pipeline, stage by stage: signal → context → findings → plan → gate → apply → redeploy → report.

Each stage is its own module; this one only sequences them, times them, logs one structured
record per stage, and turns the result into the contract's report. What may be written is the
gate's decision alone (``remediation.policy``): the engine applies exactly ``Gate.to_apply``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from .actions import KINDS
from .actions.redeploy import REDEPLOY
from .azure.apply import apply_actions
from .azure.clients import AzureClients
from .azure.gather import Gatherer, GatherOptions
from .azure.redeploy import RedeployOptions, deployable_body, redeploy
from .checks import is_image_pull_failure, run_checks
from .definition import parse_definition
from .errors import InputError
from .journal import NoJournal, RunJournal
from .model import Action, Context, FailureSignal, Finding, RbacRules, RedeployResult, Skip, Trigger
from .plan import FIXES, plan
from .policy import Gate, early_refusal, gate
from .report import build_report, validate_report
from .settings import Settings

log = logging.getLogger("remediation")
Progress = Callable[[str, float, str], None]
"""Called after each stage with (stage name, seconds taken, one-line summary)."""


@dataclass
class Engine:
    clients: AzureClients
    settings: Settings
    gather_options: GatherOptions = field(default_factory=GatherOptions)
    redeploy_options: RedeployOptions = field(default_factory=RedeployOptions)
    journal: RunJournal = field(default_factory=NoJournal)
    """What the run records as it goes (heartbeats, attempts, the ``"fixed"`` checkpoint, the last
    known good): the service's journal keeps it in the ledger; the default records nothing."""
    progress: Progress | None = None

    def run(self, item: FailureSignal | Skip, *, trigger: Trigger, resume_redeploy: bool = False) -> dict[str, Any]:
        """One remediation run; always returns a contract report (``failed`` when it could not finish).

        ``resume_redeploy``: an earlier run applied its fixes and stopped before redeploying; the
        gate adds the redeploy even though the checks no longer find the (now fixed) cause, and the
        redeploy waits for the fixes to propagate. A report whose
        failure a later attempt may clear (throttling, 5xx, lost connection) has ``"retryable": true``.
        """
        return _Run(self, item, trigger, resume_redeploy).execute()

    def failed(self, item: FailureSignal | Skip, *, trigger: Trigger, error: str) -> dict[str, Any]:
        """The ``failed`` report of a run that broke off (the reason is one scrubbed line)."""
        return _Run(self, item, trigger, False).report(error=error)


class _Run:
    def __init__(self, engine: Engine, item: FailureSignal | Skip, trigger: Trigger, resume: bool) -> None:
        self.engine = engine
        self.resume = resume
        self.settings = engine.settings
        self.item = item
        self.trigger = trigger
        self.started = datetime.now(UTC)
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self.warnings: list[str] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, str]]:
        info: dict[str, str] = {"summary": ""}
        t0 = time.monotonic()
        try:
            yield info
        finally:
            took = time.monotonic() - t0
            self.timings[name] = self.timings.get(name, 0.0) + took
            self.engine.journal.heartbeat()
            signal = self.item if isinstance(self.item, FailureSignal) else None
            log.info("stage %s: %s", name, info["summary"], extra={
                "stage": name, "seconds": round(took, 3),
                "resourceId": signal.resource_id if signal else getattr(self.item, "resource_id", None),
                "correlationId": signal.correlation_id if signal else None,
                "eventId": signal.event_id if signal else None,
            })
            if self.engine.progress:
                self.engine.progress(name, took, info["summary"])

    def report(self, **kw: Any) -> dict[str, Any]:
        signal = self.item if isinstance(self.item, FailureSignal) else None
        kw.setdefault("resource_id", signal.resource_id if signal else (getattr(self.item, "resource_id", "") or ""))
        kw.setdefault("correlation_id", signal.correlation_id if signal else None)
        kw.setdefault("event_id", signal.event_id if signal else None)
        result = build_report(trigger=self.trigger, started_at=self.started, finished_at=datetime.now(UTC),
                              timings=self.timings, notes=self.notes, warnings=self.warnings,
                              secrets=self.settings.secret_values(), **kw)
        validate_report(result)
        return result

    def execute(self) -> dict[str, Any]:
        if isinstance(self.item, Skip):
            return self.report(skip_reason=self.item.reason)
        signal = self.item
        early = early_refusal(signal, self.settings, trigger=self.trigger)  # before any Azure call
        if early:
            return self.report(skip_reason=early)
        try:
            return self._pipeline(signal)
        except InputError as exc:
            return self.report(error=f"bad input: {exc}")

    def _pipeline(self, signal: FailureSignal) -> dict[str, Any]:
        with self.stage("context") as st:
            beat, wait = self.engine.journal.heartbeat, self.engine.gather_options.sleep
            options = replace(self.engine.gather_options, sleep=lambda seconds: (beat(), wait(seconds))[1])
            gatherer = Gatherer(self.engine.clients, options)
            try:
                ctx = gatherer.gather(signal)
            finally:
                gatherer.close()
            ctx = replace(ctx, rbac=RbacRules(self.settings.rbac_propagation_minutes,
                                              self.settings.tenant_has_arm_private_link))
            self.notes.extend(ctx.notes)
            st["summary"] = (f"error {ctx.error.code if ctx.error else 'unknown'}; definition from "
                             f"{ctx.definition.source if ctx.definition else 'nowhere'}")
        if gatherer.transient_failures:
            report = self.report(error="Azure could not be read: " + "; ".join(gatherer.transient_failures[:3]))
            report["retryable"] = True
            return report
        error_code = ctx.error.code if ctx.error else None
        error_message = ctx.error.message if ctx.error else None
        common = {"error_code": error_code, "error_message": error_message}
        if ctx.error is None and ctx.definition is None and signal.schema != "sweep":
            # Nothing is known yet: the Activity Log can lag longer than the wait. A retry may know more.
            report = self.report(error="the failed write is not in the Activity Log yet, and no definition "
                                       "of the group could be recovered", **common)
            report["retryable"] = True
            return report
        if ctx.error and not is_image_pull_failure(ctx):
            return self.report(skip_reason=f"not an image-pull failure ({ctx.error.code})", **common)
        healthy = None if signal.schema == "sweep" else _already_healthy(ctx)
        if healthy:  # a resumed run too: its redeploy already happened if the group runs these images
            return self.report(skip_reason=healthy, **common)

        with self.stage("findings") as st:
            findings = run_checks(ctx)
            st["summary"] = ", ".join(f.code for f in findings) or "no cause found"
        with self.stage("plan") as st:
            decision = gate(plan(findings, ctx), ctx, self.settings, resume=self.resume,
                            attempts_in_window=self.engine.journal.attempts_in_window(signal.resource_id))
            self.notes.extend(decision.notes)
            self.warnings.extend(decision.warnings)
            findings = _with_gate_evidence(findings, decision)
            st["summary"] = (f"{len(decision.to_apply)} change(s) allowed of {len(decision.actions)} planned"
                             + (f"; skipped: {decision.skip_reason}" if decision.skip_reason else ""))
        if decision.skip_reason:
            # not ours to handle (opted out, loop guard, scope): no diagnosis is reported either
            self.notes.append("diagnosis not reported: the run was skipped")
            return self.report(actions=decision.actions, skip_reason=decision.skip_reason, **common)
        if decision.dry_run:
            return self.report(findings=findings, actions=decision.actions, dry_run=True, **common)
        if decision.to_apply:
            self.engine.journal.record_attempt(signal.resource_id)

        with self.stage("apply") as st:
            applied = apply_actions(self.engine.clients, decision)
            st["summary"] = "; ".join(f"{a.kind} {a.status}" for a in applied if a.kind != REDEPLOY.name) or "nothing"
        if any(a.status == "applied" for a in applied):
            self.engine.journal.checkpoint("fixed")
        result, applied = self._redeploy(ctx, findings, applied, decision)
        final = [_settle(a) for a in applied]
        report = self.report(findings=findings, actions=final, redeploy=result, **common)
        if decision.retryable or any(a.retryable for a in final) or (result is not None and result.retryable):
            report["retryable"] = True
        return report

    def _redeploy(self, ctx: Context, findings: list[Finding], actions: list[Action],
                  decision: Gate) -> tuple[RedeployResult | None, list[Action]]:
        wanted = [a for a in actions if a.kind == REDEPLOY.name and a in decision.to_apply]
        if not wanted:
            return None, actions
        if any(a.status == "failed" for a in actions):
            return RedeployResult("skipped", 0, "a fix failed"), [
                replace(a, status="skipped", detail="not redeployed: a fix failed") if a in wanted else a
                for a in actions]
        definition = ctx.definition
        corrected = decision.redeploy_definition
        if corrected is not None and definition is not None:
            definition = parse_definition(definition.resource_id, corrected, definition.api_version, definition.source)
        if definition is None:
            note = "no definition to redeploy from; redeploy the container group yourself"
            return None, [replace(a, status="skipped", detail=note) if a in wanted else a for a in actions]
        with self.stage("redeploy") as st:
            # a fix made now, or by the run this one resumes, or an assignment found still taking
            # effect (no fix of its own) may still be propagating
            wrote = self.resume or any(a.status == "applied" and a.kind in KINDS
                                       and KINDS[a.kind].waits_for_propagation for a in actions) \
                or any(f.code in FIXES and FIXES[f.code].awaits_propagation for f in findings)
            options = replace(self.engine.redeploy_options, retry_on_propagation=wrote,
                              budget_seconds=min(self.engine.redeploy_options.budget_seconds,
                                                 float(self.settings.redeploy_budget_seconds)))
            beat, tell = self.engine.journal.heartbeat, options.progress
            options = replace(options, progress=lambda line: (beat(), tell(line) if tell else None)[1])
            result = redeploy(self.engine.clients, definition, options)
            st["summary"] = f"{result.status} after {result.attempts} attempt(s) {result.detail}".strip()
        if result.status == "succeeded":
            self.engine.journal.redeployed(definition.resource_id, deployable_body(definition))
        status = {"succeeded": "applied", "failed": "failed", "skipped": "skipped"}[result.status]
        return result, [replace(a, status=status, detail=f"{a.detail}: {result.detail}") if a in wanted else a  # type: ignore[arg-type]
                        for a in actions]


def _with_gate_evidence(findings: list[Finding], decision: Gate) -> list[Finding]:
    """Each finding with what the gate found about the deployer's rights on its registry."""
    out = []
    for finding in findings:
        registry = str(finding.evidence.get("registryId", "")).lower()
        extra = {k: v for cause, target, evidence in decision.cause_evidence
                 if cause == finding.code and target.lower() == registry for k, v in evidence.items()}
        out.append(replace(finding, evidence={**finding.evidence, **extra}) if extra else finding)
    return out


def _settle(action: Action) -> Action:
    """A proposal that was not applied is reported as skipped, with its reason in the detail."""
    if action.status == "planned":
        return replace(action, status="skipped")
    return action


def _already_healthy(ctx: Context) -> str | None:
    """A group that now runs the very images that failed needs nothing (e.g. a second delivery)."""
    group = ctx.existing_group
    if not group or ctx.definition is None or ctx.definition.source == "existing":
        return None
    props = group.get("properties") or {}
    if props.get("provisioningState") != "Succeeded":
        return None
    running = [c for c in props.get("containers") or []
               if ((c.get("properties") or {}).get("instanceView") or {}).get("currentState", {}).get("state")
               == "Running"]
    images = sorted(str((c.get("properties") or {}).get("image", "")).lower() for c in props.get("containers") or [])
    wanted = sorted(str((c.get("properties") or {}).get("image", "")).lower()
                    for c in (ctx.definition.body.get("properties") or {}).get("containers") or [])
    if running and len(running) == len(props.get("containers") or []) and images == wanted:
        return "the container group already runs these images; nothing to do"
    return None
