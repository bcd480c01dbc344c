"""ACR_PULL_PERMISSION_MISSING: no role assignment grants the identity pull on a legacy-mode registry."""

from __future__ import annotations

from remediation.checks import FindingFactory, check, document, pull_subjects
from remediation.model import Context, Finding
from remediation.permissions import PULL_ACTION, explain_assignments


@check(
    "ACR_PULL_PERMISSION_MISSING",
    f"No assignment of the credential's identity grants {PULL_ACTION} at the registry or above "
    "(built-in or custom roles, inherited scopes, wildcards, notActions); assign AcrPull at the registry.",
    rank=80,
    fixable=True,
    source="troubleshooting guide",
    documents=(document("troubleshooting guide"), document("current docs")),
)
def acr_pull_permission_missing(ctx: Context, finding: FindingFactory) -> list[Finding]:
    findings = []
    for subject in pull_subjects(ctx):
        registry = subject.registry
        if registry.abac:
            continue  # AcrPull is not honoured there; the ABAC check owns this registry.
        verdicts = explain_assignments(subject.assignments, ctx.role_definitions, PULL_ACTION, registry.id)
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
                    "assignmentsConsidered": [v.as_evidence() for v in verdicts],
                },
            )
        )
    return findings
