"""ACR_ABAC_REPOSITORY_PERMISSIONS: an ABAC-mode registry where no assignment lets the identity read the repository."""

from __future__ import annotations

from typing import Any

from remediation.checks import FindingFactory, check, images_from, pull_subjects
from remediation.model import Context, Finding
from remediation.permissions import REPOSITORY_CONTENT_READ, explain_repository_read


@check(
    "ACR_ABAC_REPOSITORY_PERMISSIONS",
    "The registry uses AbacRepositoryPermissions (AcrPull is not honoured) and no assignment grants "
    f"{REPOSITORY_CONTENT_READ} for the image's repository; assign Container Registry Repository Reader.",
    rank=90,
    fixable=True,
    source="troubleshooting guide",
)
def abac_repository_permissions(ctx: Context, finding: FindingFactory) -> list[Finding]:
    findings = []
    for subject in pull_subjects(ctx):
        registry = subject.registry
        if not registry.abac:
            continue
        repositories = sorted({i.repository for i in images_from(ctx, registry.login_server)})
        missing: list[str] = []
        considered: dict[str, list[dict[str, Any]]] = {}
        undecided = False
        for repository in repositories:
            verdicts = explain_repository_read(subject.assignments, ctx.role_definitions, registry.id, repository)
            considered[repository] = [v.as_evidence() for v in verdicts]
            undecided = undecided or not all(v.decided for v in verdicts)
            if not any(v.grants for v in verdicts):
                missing.append(repository)
        if not missing or undecided:
            continue
        findings.append(
            finding(
                f"Registry {registry.name} uses ABAC repository permissions, where AcrPull is not honoured, and "
                f"identity {subject.credential.identity} cannot read {', '.join(missing)}.",
                {
                    **subject.evidence(),
                    "roleAssignmentMode": registry.role_assignment_mode,
                    "operation": REPOSITORY_CONTENT_READ,
                    "repositories": missing,
                    "assignmentsConsidered": considered,
                },
            )
        )
    return findings
