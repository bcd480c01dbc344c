"""A run's journal: the one owner of what a run records about itself, so that its effect happens once.

The service opens a journal for each run and hands it to the engine; the command line and the
demo use :class:`NoJournal`, which records nothing. In the order of a run:

==========================================  =======================================================
call                                        what the ledger's journal does
==========================================  =======================================================
``claim(signal, replay=)`` → Held | None    claims the failure (a replay claims apart from Event
                                            Grid deliveries); else what holds it: a finished run,
                                            or a live one until ``Held.until``
``lease()`` → Held | None                   takes the group's lease; else until when another run
                                            of the group holds it
``resumes_after_fix``                       after ``lease``: a run of this failure applied its fixes
                                            and no redeploy of the group has succeeded since
``heartbeat()``                             between stages and during waits: renews the claim and
                                            the lease once half the claim's TTL has passed
``attempts_in_window(resource_id)`` → int   earlier fix attempts on the group in the policy window
``record_attempt(resource_id)``             once, before the first write, so a crash still counts
``checkpoint(stage)``                       ``"fixed"``: fixes applied, so a taker resumes the redeploy
``redeployed(resource_id, body)``           keeps the verified definition as the last known good
``complete(report)`` → report id            stores the report; closes the claim (``done``) only
                                            when the outcome finished the remediation, else gives
                                            it back (``FINISHED_OUTCOMES`` in the ledger)
``release()``                               gives the claim back so a redelivery may retry at once
``close()``                                 gives the lease up (always, after complete or release)
==========================================  =======================================================

The engine calls only ``heartbeat``, ``attempts_in_window``, ``record_attempt``, ``checkpoint``
and ``redeployed``; the service the rest. A claim lost to a taker (the run outlived its TTL)
surfaces from ``heartbeat`` or ``checkpoint`` as the ledger's ``ClaimLost``, ending the run;
at ``complete`` the report is stored all the same and the claim left to its taker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .model import FailureSignal


@dataclass(frozen=True)
class Held:
    """What keeps a run from a failure's claim or a group's lease."""

    until: datetime | None
    """When the live run holding it lets go at the latest (its expiry); None: a run of this
    failure finished already."""
    report_id: str | None = None
    """The finished run's report, where the claim names it."""

    @property
    def finished(self) -> bool:
        return self.until is None


class RunJournal(Protocol):
    """What a run records as it goes; see the module docstring for the order of the calls."""

    @property
    def resumes_after_fix(self) -> bool:
        """A run of this failure (delivered or replayed) applied its fixes and stopped before
        redeploying, and no redeploy of the group has succeeded since; known once leased."""
        ...

    def claim(self, signal: FailureSignal, *, replay: bool = False) -> Held | None:
        """Own the remediation of this failure (None), or say what holds it. A ``replay`` (a
        person's) claims apart from deliveries and retakes a finished replay of its own."""
        ...

    def lease(self) -> Held | None:
        """Own the claimed failure's container group (None), or say until when another run holds it."""
        ...

    def heartbeat(self) -> None:
        """The run is alive: keep what it owns from expiring."""
        ...

    def attempts_in_window(self, resource_id: str) -> int:
        """How many fix attempts on the group were recorded in the policy's window."""
        ...

    def record_attempt(self, resource_id: str) -> None:
        """Count this run as an attempt; called once, before its first write."""
        ...

    def checkpoint(self, stage: str) -> None:
        """Record how far the run got (``"fixed"``), so a run that takes it over can resume."""
        ...

    def redeployed(self, resource_id: str, body: Mapping[str, Any]) -> None:
        """A redeploy of ``body`` succeeded: it is the group's last known-good definition."""
        ...

    def complete(self, report: Mapping[str, Any]) -> str | None:
        """Store the run's report and close its claim if the outcome finished the remediation (else
        give it back); the report's id, or None when nothing is kept."""
        ...

    def release(self) -> None:
        """Give the claim back unfinished, so a redelivery may retry at once."""
        ...

    def close(self) -> None:
        """The run is over: give up the lease."""
        ...


class NoJournal:
    """A journal that records nothing: every run owns its failure and its group, and counts no attempts."""

    @property
    def resumes_after_fix(self) -> bool:
        return False

    def claim(self, signal: FailureSignal, *, replay: bool = False) -> Held | None:
        return None

    def lease(self) -> Held | None:
        return None

    def heartbeat(self) -> None:
        pass

    def attempts_in_window(self, resource_id: str) -> int:
        return 0

    def record_attempt(self, resource_id: str) -> None:
        pass

    def checkpoint(self, stage: str) -> None:
        pass

    def redeployed(self, resource_id: str, body: Mapping[str, Any]) -> None:
        pass

    def complete(self, report: Mapping[str, Any]) -> str | None:
        return None

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass
