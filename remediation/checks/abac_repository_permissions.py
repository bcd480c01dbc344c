"""ACR_ABAC_REPOSITORY_PERMISSIONS: an ABAC-mode registry where the identity holds no repository role."""

from __future__ import annotations

from remediation.checks import FindingFactory, check, document, unreadable_repositories
from remediation.model import Context, Finding
from remediation.permissions import REPOSITORY_CONTENT_READ


@check(
    "ACR_ABAC_REPOSITORY_PERMISSIONS",
    "The registry uses AbacRepositoryPermissions (AcrPull is not honoured) and no assignment grants "
    f"{REPOSITORY_CONTENT_READ} for the image's repository; assign Container Registry Repository Reader "
    "conditioned to exactly the repositories the group pulls.",
    rank=90,
    fixable=True,
    source="troubleshooting guide",
    documents=(document("troubleshooting guide"),
               document("ACR ABAC repository permissions", lists_cause=False,
                        note="AcrPull, AcrPush and AcrDelete are not honoured in ABAC-enabled registries")),
)
def abac_repository_permissions(ctx: Context, finding: FindingFactory) -> list[Finding]:
    findings = []
    for subject, access in unreadable_repositories(ctx):
        registry = subject.registry
        # a held repository role whose condition leaves a repository out is the condition cause's
        if access.excluding:
            continue
        findings.append(
            finding(
                f"Registry {registry.name} uses ABAC repository permissions, where AcrPull is not honoured, and "
                f"identity {subject.credential.identity} cannot read {', '.join(access.missing)}.",
                {
                    **subject.evidence(),
                    "roleAssignmentMode": registry.role_assignment_mode,
                    "operation": REPOSITORY_CONTENT_READ,
                    "repositories": list(access.missing),
                    "assignmentsConsidered": access.considered,
                },
            )
        )
    return findings
