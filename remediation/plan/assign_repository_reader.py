"""ACR_ABAC_REPOSITORY_PERMISSIONS and ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY → assign Container
Registry Repository Reader at the registry's scope.

In the ``AbacRepositoryPermissions`` role-assignment mode AcrPull is not honoured, so the
repository role is granted instead, conditioned to exactly the repositories the identity cannot
read (those the finding names, else every repository the group pulls from that registry): an
unconditioned repository role would grant every repository of the registry. Where a held role's
condition excludes them, this is an additional assignment; the held one is never changed.
"""

from __future__ import annotations

from remediation.actions.assign_role import (
    REPOSITORY_READER_ROLE_NAME,
    assign_role,
    group_repositories,
    repository_reader_guid,
)
from remediation.model import Action, Context, Finding
from remediation.plan import fix
from remediation.plan.pull_targets import pull_targets


@fix(
    "ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY",
    "Assign an additional Container Registry Repository Reader at exactly the registry's scope, conditioned to "
    "the repositories the held role's condition excludes; the held assignment is left as it is.",
)
@fix(
    "ACR_ABAC_REPOSITORY_PERMISSIONS",
    "Assign Container Registry Repository Reader to the credential's identity at exactly the registry's scope, "
    "conditioned to the repositories it cannot read.",
)
def assign_repository_reader(finding: Finding, ctx: Context) -> list[Action]:
    role_guid = repository_reader_guid(ctx)
    named = finding.evidence.get("repositories")
    wanted = {str(r).lower() for r in named} if isinstance(named, list) and named else None
    actions = []
    for target in pull_targets(finding, ctx, abac=True):
        pulled = group_repositories(ctx, target.registry_id)
        repositories = sorted(pulled & wanted if wanted is not None else pulled)
        if repositories:
            actions.append(assign_role(target.registry_id, target.principal_id, role_guid,
                                       REPOSITORY_READER_ROLE_NAME, finding.code, repositories))
    return actions
