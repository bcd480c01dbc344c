"""ACR_TRUSTED_SERVICES_DISABLED → let trusted Azure services (ACI among them) past the registry's firewall.

Only ``networkRuleBypassOptions`` is written; public access, IP rules and private endpoints stay as
they are. ``REMEDIATION_FIX_TRUSTED_SERVICES=false`` makes the policy gate refuse it.
"""

from __future__ import annotations

from remediation.actions import find_registry
from remediation.actions.enable_trusted_services import ENABLE_TRUSTED_SERVICES, TRUSTED_SERVICES_PATCH
from remediation.model import Action, Context, Finding
from remediation.plan import fix


@fix(
    "ACR_TRUSTED_SERVICES_DISABLED",
    "Set the registry's networkRuleBypassOptions to AzureServices, and nothing else.",
)
def enable_trusted_services(finding: Finding, ctx: Context) -> list[Action]:
    return [
        Action(
            kind=ENABLE_TRUSTED_SERVICES.name,
            target=registry_id,
            detail=f"allow trusted Azure services (networkRuleBypassOptions=AzureServices) on {registry_id}",
            params=dict(TRUSTED_SERVICES_PATCH),
            cause=finding.code,
        )
        for registry_id in _registries(finding, ctx)
    ]


def _registries(finding: Finding, ctx: Context) -> list[str]:
    """The registry named by the evidence (``registryId``), else every restricted one without the bypass."""
    named = finding.evidence.get("registryId")
    if isinstance(named, str) and named:
        known = find_registry(ctx, named)
        return [known.id if known else named]
    ids = {
        r.id.lower(): r.id
        for r in ctx.registries.values()
        if r is not None and r.network_restricted and (r.bypass or "None").lower() != "azureservices"
    }
    return [ids[k] for k in sorted(ids)]
