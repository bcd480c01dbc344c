"""ACI_VNET_UNSUPPORTED: a VNet-injected group pulling with a managed identity (troubleshooting guide)."""

from __future__ import annotations

from remediation.checks import FindingFactory, check, document, identity_credentials
from remediation.model import Context, Finding


@check(
    "ACI_VNET_UNSUPPORTED",
    "The group is VNet-injected (subnetIds) and pulls with a managed identity, which the troubleshooting "
    "guide lists as unsupported. Never fixed automatically: changing the network would not be a fix.",
    rank=60,
    fixable=False,
    source="troubleshooting guide",
    documents=(
        document("troubleshooting guide"),
        document(
            "current docs",
            lists_cause=False,
            note="no longer lists this limitation; VNet-deployed groups can pull through the "
            "registry's private endpoint with a managed identity",
        ),
    ),
)
def vnet_unsupported(ctx: Context, finding: FindingFactory) -> list[Finding]:
    credentials = identity_credentials(ctx)
    if ctx.definition is None or not ctx.definition.subnet_ids or not credentials:
        return []
    return [
        finding(
            "The container group is VNet-injected and pulls with a managed identity; the troubleshooting "
            "guide lists VNet-injected groups as unsupported for managed-identity pulls.",
            {
                "subnetIds": list(ctx.definition.subnet_ids),
                "credentialIndexes": [c.index for c in credentials],
                "alternatives": [
                    "pull through a private endpoint of a Premium registry, as the current docs describe",
                    "deploy the group without VNet injection",
                    "use a username/password (token) credential instead of the identity",
                ],
            },
        )
    ]
