"""ACI_API_VERSION_TOO_OLD → redeploy the same definition with the current ACI api-version.

Identity registry credentials need api-version 2021-07-01 or later; the body itself is fine.
"""

from __future__ import annotations

from remediation.model import CURRENT_ACI_API_VERSION, Action, Context, Finding
from remediation.plan import fix, redeploy_action


@fix("ACI_API_VERSION_TOO_OLD", f"Redeploy the group unchanged with api-version {CURRENT_ACI_API_VERSION}.")
def redeploy_current_api(finding: Finding, ctx: Context) -> list[Action]:
    return [redeploy_action(ctx, api_version=CURRENT_ACI_API_VERSION, cause=finding.code)]
