"""ACR_PULL_PERMISSION_MISSING → assign AcrPull to the pulling identity, at the registry's scope only."""

from __future__ import annotations

from remediation.actions.assign_role import ACR_PULL_ROLE_GUID, ACR_PULL_ROLE_NAME, assign_role
from remediation.model import Action, Context, Finding
from remediation.plan import fix
from remediation.plan.pull_targets import pull_targets


@fix("ACR_PULL_PERMISSION_MISSING", "Assign AcrPull to the credential's identity at exactly the registry's scope.")
def assign_acr_pull(finding: Finding, ctx: Context) -> list[Action]:
    return [
        assign_role(t.registry_id, t.principal_id, ACR_PULL_ROLE_GUID, ACR_PULL_ROLE_NAME, finding.code)
        for t in pull_targets(finding, ctx, abac=False)
    ]
