"""ACR_PULL_PERMISSION_MISSING: no role assignment grants the identity pull on a legacy-mode registry."""

from __future__ import annotations

from remediation.checks import FindingFactory, check, document, pull_subjects
from remediation.model import Context, Finding
from remediation.permissions import PULL_ACTION, explain_pull


@check(
    "ACR_PULL_PERMISSION_MISSING",
    f"No assignment of the credential's identity grants {PULL_ACTION} at the registry or above "
    "(built-in or custom roles, inherited scopes, groups, notActions; a custom role's wildcard only in tenants "
    "with ARM private link); assign AcrPull at the registry.",
    rank=80,
    fixable=True,
    source="troubleshooting guide",
    documents=(document("troubleshooting guide"), document("current docs"),
               document("ACR custom roles", lists_cause=False,
                        note="a custom role's wildcard action counts for ACR only in tenants with ARM private link")),
)
def acr_pull_permission_missing(ctx: Context, finding: FindingFactory) -> list[Finding]:
    findings = []
    for subject in pull_subjects(ctx):
        registry = subject.registry
        if registry.abac:
            continue  # AcrPull is not honoured there; the ABAC checks own this registry.
        verdicts = explain_pull(subject.assignments, ctx.role_definitions, registry.id,
                                custom_wildcards=ctx.rbac.custom_wildcards)
        # any granting assignment, even one still propagating, means nothing is missing
        if any(v.grants for v in verdicts) or not all(v.decided for v in verdicts):
            continue
        findings.append(
            finding(
                f"Identity {subject.credential.identity} (principal {subject.principal_id}) has no role "
                f"granting {PULL_ACTION} on registry {registry.name}.",
                {
                    **subject.evidence(),
                    "roleAssignmentMode": registry.role_assignment_mode or "LegacyRegistryPermissions",
                    "operation": PULL_ACTION,
                    "tenantHasArmPrivateLink": ctx.rbac.custom_wildcards,
                    "assignmentsConsidered": [v.as_evidence() for v in verdicts],
                },
            )
        )
    return findings
