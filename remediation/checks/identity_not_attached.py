"""ACI_IDENTITY_NOT_ATTACHED: the credential's identity is not among the group's user-assigned identities."""

from __future__ import annotations

from remediation.checks import FindingFactory, check, identity_credentials, is_system_reference
from remediation.model import Context, Finding


@check(
    "ACI_IDENTITY_NOT_ATTACHED",
    "A credential's identity is not in identity.userAssignedIdentities (InvalidImageRegistryIdentity); "
    "propose the definition with the identity attached.",
    rank=30,
    fixable=False,
    source="troubleshooting guide",
)
def identity_not_attached(ctx: Context, finding: FindingFactory) -> list[Finding]:
    if ctx.definition is None:
        return []
    attached = {identity.lower() for identity in ctx.definition.user_assigned_identities}
    findings = []
    for credential in identity_credentials(ctx):
        identity = credential.identity or ""
        if is_system_reference(identity) or identity.lower() in attached:
            continue
        findings.append(
            finding(
                f"imageRegistryCredentials[{credential.index}].identity {identity} is not attached to the "
                "container group (identity.userAssignedIdentities).",
                {
                    "credentialIndex": credential.index,
                    "field": "identity",
                    "identity": identity,
                    "identityType": ctx.definition.identity_type,
                    "userAssignedIdentities": list(ctx.definition.user_assigned_identities),
                    "proposal": f"add {identity} to identity.userAssignedIdentities",
                },
            )
        )
    return findings
