"""ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY: the identity's repository role leaves out a repository pulled.

The fix is an additional Container Registry Repository Reader, conditioned to exactly the excluded
repositories; the existing assignment is never changed. Azure keeps one assignment per (principal,
role, scope), conditions aside ("Is it possible to create a role assignment with and without a
condition, but using the same tuple of security principal, role definition, and scope? No",
MicrosoftDocs azure-docs ``articles/role-based-access-control/conditions-faq.md``, ms.date
2023-05-09, commit 4f3138fb00cb8ddd75692b995ee429e68966b614). So where the held role already *is*
Repository Reader at exactly the registry's scope, a second one would be refused: the finding is
then not fixable, and its evidence names the assignment a person would widen.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from remediation.actions.assign_role import REPOSITORY_READER_ROLE_NAME, repository_condition, repository_reader_guid
from remediation.checks import FindingFactory, PullSubject, check, document, unreadable_repositories
from remediation.model import Context, Finding, RoleAssignment
from remediation.permissions import REPOSITORY_CONTENT_READ, scope_applies


@check(
    "ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY",
    "In an AbacRepositoryPermissions registry the identity holds a repository role whose condition "
    "(@Request or @Resource repository name) excludes a repository the group pulls; assign an additional "
    "Container Registry Repository Reader conditioned to exactly the excluded repositories.",
    rank=95,
    fixable=True,
    source="troubleshooting guide",
    documents=(document("troubleshooting guide", note="an ABAC condition might also exclude the target repository"),
               document("ACR ABAC repository permissions", lists_cause=False,
                        note="the documented repository condition uses @Request[...repositories:name]"),
               document("RBAC conditions FAQ", lists_cause=False,
                        note="one assignment per principal, role and scope, whatever its condition")),
)
def abac_condition_excludes_repository(ctx: Context, finding: FindingFactory) -> list[Finding]:
    findings = []
    for subject, access in unreadable_repositories(ctx):
        registry = subject.registry
        if not access.excluding:
            continue
        evidence: dict[str, Any] = {
            **subject.evidence(),
            "roleAssignmentMode": registry.role_assignment_mode,
            "operation": REPOSITORY_CONTENT_READ,
            "repositories": list(access.missing),
            "excludedBy": [{"id": a.id, "roleDefinitionId": a.role_definition_id, "scope": a.scope,
                            "condition": a.condition} for a in access.excluding],
            "assignmentsConsidered": access.considered,
        }
        summary = (f"Identity {subject.credential.identity} holds a repository role on registry {registry.name}, "
                   f"but its condition excludes {', '.join(access.missing)}.")
        taken = _same_tuple(ctx, subject)
        if taken is None:
            findings.append(finding(summary, evidence))
            continue
        pulled = sorted(access.considered)
        evidence["additionalAssignment"] = (
            f"not possible: {taken.id} already assigns {REPOSITORY_READER_ROLE_NAME} to this principal at exactly "
            "the registry's scope, and Azure allows one assignment per principal, role and scope whatever its "
            "condition; someone who may change it can widen its condition to the repositories the group pulls")
        evidence["suggestedCondition"] = repository_condition(pulled)
        # never changed by the app: the existing assignment is someone else's decision
        findings.append(replace(finding(summary, evidence), fixable=False))
    return findings


def _same_tuple(ctx: Context, subject: PullSubject) -> RoleAssignment | None:
    """The principal's own Repository Reader at exactly the registry's scope, which a new one would duplicate."""
    reader = repository_reader_guid(ctx)
    registry = subject.registry.id
    for assignment in subject.assignments:
        exact = scope_applies(assignment.scope, registry) and scope_applies(registry, assignment.scope)
        if exact and assignment.role_guid == reader and assignment.principal_id.lower() == subject.principal_id.lower():
            return assignment
    return None
