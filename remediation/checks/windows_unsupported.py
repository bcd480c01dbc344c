"""ACI_WINDOWS_UNSUPPORTED: a Windows group pulling with a managed identity (troubleshooting guide)."""

from __future__ import annotations

from remediation.checks import FindingFactory, check, document, identity_credentials
from remediation.model import Context, Finding


@check(
    "ACI_WINDOWS_UNSUPPORTED",
    "A Windows container group pulls with a managed identity; the troubleshooting guide lists Windows "
    "Server 2016 groups as unsupported. Never fixed automatically.",
    rank=70,
    fixable=False,
    source="troubleshooting guide",
    documents=(
        document("troubleshooting guide"),
        document(
            "current docs",
            lists_cause=False,
            note="no longer lists Windows Server 2016 groups; it says only that Windows groups "
            "cannot pull with a system-assigned identity (a user-assigned one is needed)",
        ),
    ),
)
def windows_unsupported(ctx: Context, finding: FindingFactory) -> list[Finding]:
    credentials = identity_credentials(ctx)
    if ctx.definition is None or (ctx.definition.os_type or "").lower() != "windows" or not credentials:
        return []
    return [
        finding(
            "The container group runs Windows and pulls with a managed identity; the troubleshooting guide "
            "lists Windows Server 2016 container groups as unsupported for managed-identity pulls.",
            {
                "osType": ctx.definition.os_type,
                "credentialIndexes": [c.index for c in credentials],
            },
        )
    ]
