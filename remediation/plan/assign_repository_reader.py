"""ACR_ABAC_REPOSITORY_PERMISSIONS → assign Container Registry Repository Reader at the registry's scope.

In the ``AbacRepositoryPermissions`` role-assignment mode AcrPull is not honoured, so the
repository role is granted instead, registry-wide (no repository condition), like AcrPull would be.
"""

from __future__ import annotations

from remediation.actions.assign_role import REPOSITORY_READER_ROLE_NAME, assign_role, repository_reader_guid
from remediation.model import Action, Context, Finding
from remediation.plan import fix
from remediation.plan.pull_targets import pull_targets


@fix(
    "ACR_ABAC_REPOSITORY_PERMISSIONS",
    "Assign Container Registry Repository Reader to the credential's identity at exactly the registry's scope.",
)
def assign_repository_reader(finding: Finding, ctx: Context) -> list[Action]:
    role_guid = repository_reader_guid(ctx)
    return [
        assign_role(t.registry_id, t.principal_id, role_guid, REPOSITORY_READER_ROLE_NAME, finding.code)
        for t in pull_targets(finding, ctx, abac=True)
    ]
