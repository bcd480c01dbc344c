"""ACR_PULL_PERMISSION_PROPAGATING → no new assignment: redeploy, retrying until the young one takes effect.

A second assignment of the same role would be refused by Azure (``RoleAssignmentExists``) or be a
duplicate; the redeploy stage's propagation retries (``remediation.azure.redeploy``) wait for the
existing one instead, within ``REMEDIATION_REDEPLOY_BUDGET_SECONDS``.
"""

from __future__ import annotations

from remediation.checks.acr_pull_permission_propagating import PULL_PERMISSION_PROPAGATING
from remediation.model import Action, Context, Finding
from remediation.plan import fix, redeploy_action


@fix(PULL_PERMISSION_PROPAGATING, "Assign nothing; redeploy the group, retrying while the assignment propagates.",
     awaits_propagation=True)
def redeploy_until_propagated(finding: Finding, ctx: Context) -> list[Action]:
    return [redeploy_action(ctx, cause=finding.code)]
