"""ACI_SYSTEM_IDENTITY_UNSUPPORTED: the credential names the system-assigned identity."""

from __future__ import annotations

from remediation.checks import FindingFactory, check, identity_credentials, is_system_reference
from remediation.model import Context, Finding


@check(
    "ACI_SYSTEM_IDENTITY_UNSUPPORTED",
    "A credential names the system-assigned identity; ACI pulls from ACR only with a user-assigned one.",
    rank=40,
    fixable=False,
    source="troubleshooting guide",
)
def system_identity_unsupported(ctx: Context, finding: FindingFactory) -> list[Finding]:
    if ctx.definition is None:
        return []
    attached = list(ctx.definition.user_assigned_identities)
    return [
        finding(
            f"imageRegistryCredentials[{credential.index}].identity is {credential.identity!r}, the "
            "system-assigned identity; ACI pulls from ACR only with a user-assigned identity.",
            {
                "credentialIndex": credential.index,
                "field": "identity",
                "identity": credential.identity,
                "userAssignedIdentities": attached,
                "proposal": f"use the attached user-assigned identity {attached[0]}" if len(attached) == 1
                else "create a user-assigned identity, grant it pull access, attach it and name it here",
            },
        )
        for credential in identity_credentials(ctx)
        if is_system_reference(credential.identity or "")
    ]
