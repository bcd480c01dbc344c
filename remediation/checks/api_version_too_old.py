"""ACI_API_VERSION_TOO_OLD: a credential uses ``identity`` with an api-version older than 2021-07-01."""

from __future__ import annotations

from remediation.checks import FindingFactory, check, identity_credentials
from remediation.model import CURRENT_ACI_API_VERSION, MIN_IDENTITY_API_VERSION, Context, Finding

ERROR_CODE = "InvalidImageRegistryCredentialType"


@check(
    "ACI_API_VERSION_TOO_OLD",
    f"A registry credential uses identity with an ACI api-version older than {MIN_IDENTITY_API_VERSION} "
    f"({ERROR_CODE}); redeploying with the current api-version fixes it.",
    rank=10,
    fixable=True,
    source="troubleshooting guide",
)
def api_version_too_old(ctx: Context, finding: FindingFactory) -> list[Finding]:
    credentials = identity_credentials(ctx)
    api_version = ctx.definition.api_version if ctx.definition else None
    too_old = bool(api_version) and str(api_version)[:10] < MIN_IDENTITY_API_VERSION
    reported = ctx.error is not None and ctx.error.code == ERROR_CODE
    if not ((too_old and credentials) or reported):
        return []
    return [
        finding(
            f"The group was written with api-version {api_version or 'unknown'}; registry credentials with "
            f"an identity need {MIN_IDENTITY_API_VERSION} or later.",
            {
                "apiVersion": api_version,
                "minimumApiVersion": MIN_IDENTITY_API_VERSION,
                "proposedApiVersion": CURRENT_ACI_API_VERSION,
                "credentialIndexes": [c.index for c in credentials],
                "errorCode": ctx.error.code if ctx.error else None,
            },
        )
    ]
