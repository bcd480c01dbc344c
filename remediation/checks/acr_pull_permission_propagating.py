"""ACR_PULL_PERMISSION_PROPAGATING: the identity's pull role exists but is too young to have taken effect.

Every assignment that grants the pull (AcrPull or another pull role on a legacy-mode registry; a
repository role covering the repository on an ABAC-mode one) is younger than
``REMEDIATION_RBAC_PROPAGATION_MINUTES``, by ARM's own ``createdOn``. Azure documents up to 10
minutes for an assignment to take effect, so the fix is to wait and redeploy, never a second
assignment. An assignment of unknown age is not waited for.
"""

from __future__ import annotations

from typing import Any

from remediation.checks import FindingFactory, PullSubject, check, document, images_from, pull_subjects
from remediation.model import Context, Finding, RoleAssignment
from remediation.permissions import (
    PULL_ACTION,
    REPOSITORY_CONTENT_READ,
    age_seconds,
    explain_pull,
    explain_repository_read,
    still_propagating,
)

PULL_PERMISSION_PROPAGATING = "ACR_PULL_PERMISSION_PROPAGATING"


@check(
    PULL_PERMISSION_PROPAGATING,
    "Every assignment that grants the identity the pull is younger than REMEDIATION_RBAC_PROPAGATION_MINUTES "
    "(createdOn), so it may not have taken effect yet; redeploy with retries, assign nothing.",
    rank=85,
    fixable=True,
    source="troubleshooting guide",
    documents=(document("troubleshooting guide", note="after the role assignment takes effect, redeploy"),
               document("RBAC troubleshooting", lists_cause=False,
                        note="role assignments can take up to 10 minutes to take effect")),
)
def acr_pull_permission_propagating(ctx: Context, finding: FindingFactory) -> list[Finding]:
    findings = []
    for subject in pull_subjects(ctx):
        young = _young_grants(ctx, subject)
        if not young:
            continue
        registry = subject.registry
        operation = REPOSITORY_CONTENT_READ if registry.abac else PULL_ACTION
        findings.append(
            finding(
                f"Identity {subject.credential.identity} holds the pull on registry {registry.name}, but only through "
                f"{_count(young)} younger than {ctx.rbac.propagation_minutes} minutes, which may not have taken "
                "effect yet.",
                {
                    **subject.evidence(),
                    "roleAssignmentMode": registry.role_assignment_mode or "LegacyRegistryPermissions",
                    "operation": operation,
                    "propagationMinutes": ctx.rbac.propagation_minutes,
                    "propagating": [_described(a, ctx) for a in young],
                },
            )
        )
    return findings


def _young_grants(ctx: Context, subject: PullSubject) -> list[RoleAssignment]:
    """The granting assignments, when every one granting some pull is still propagating; else none."""
    registry = subject.registry
    if registry.abac:
        repositories = sorted({i.repository for i in images_from(ctx, registry.login_server)})
        per_repository = [explain_repository_read(subject.assignments, ctx.role_definitions, registry.id, r,
                                                  custom_wildcards=ctx.rbac.custom_wildcards) for r in repositories]
    else:
        per_repository = [explain_pull(subject.assignments, ctx.role_definitions, registry.id,
                                       custom_wildcards=ctx.rbac.custom_wildcards)]
    if not per_repository or not all(v.decided for verdicts in per_repository for v in verdicts):
        return []
    granting = [[v.assignment for v in verdicts if v.grants] for verdicts in per_repository]
    if not all(granting):
        return []  # something is missing: the missing-permission checks own it
    waiting = [assignments for assignments in granting
               if all(still_propagating(a, ctx.read_at, ctx.rbac.propagation_minutes) for a in assignments)]
    return list(dict.fromkeys(a for assignments in waiting for a in assignments))


def _described(assignment: RoleAssignment, ctx: Context) -> dict[str, Any]:
    age = age_seconds(assignment, ctx.read_at)
    return {
        "id": assignment.id,
        "roleDefinitionId": assignment.role_definition_id,
        "scope": assignment.scope,
        "createdOn": assignment.created_on.isoformat() if assignment.created_on else None,
        "ageSeconds": round(age) if age is not None else None,
    }


def _count(assignments: list[RoleAssignment]) -> str:
    return "an assignment" if len(assignments) == 1 else f"{len(assignments)} assignments"

