"""UNKNOWN → redeploy the recorded definition once, unchanged.

Azure reports transient ``InaccessibleImage`` failures that clear without a change, so an
image-pull failure that no check explains is retried once (CONTRACT.md §1, last row). Only where
every check could decide: a note from the gatherer means something was not read (an identity, the
role assignments, the image), and a check may have stayed silent for want of data, so nothing is
retried then. The gate decides the rest: ``REMEDIATION_RETRY_UNEXPLAINED`` and "once"
(``remediation.policy``). The finding is not ``fixable`` (nothing is fixed), so the fix is
registered as one planned for every matching finding.
"""

from __future__ import annotations

from remediation.checks import UNKNOWN
from remediation.model import Action, Context, Finding
from remediation.plan import fix, redeploy_action


@fix(UNKNOWN.code, "Redeploy the recorded definition once, unchanged: a transient pull failure clears.",
     automatic=False)
def retry_unexplained(finding: Finding, ctx: Context) -> list[Action]:
    if ctx.notes or ctx.definition is None or not ctx.definition.complete:
        return []
    return [redeploy_action(ctx, cause=finding.code)]
