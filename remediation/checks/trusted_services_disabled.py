"""ACR_TRUSTED_SERVICES_DISABLED: a network-restricted registry that does not let trusted services (ACI) in."""

from __future__ import annotations

from remediation.checks import FindingFactory, check, document, identity_credentials, is_system_reference, pulls_with
from remediation.model import Context, Finding, Registry


@check(
    "ACR_TRUSTED_SERVICES_DISABLED",
    "The registry is network-restricted (public access disabled or default action Deny) and "
    "networkRuleBypassOptions is None, so ACI cannot reach it as a trusted service; set AzureServices.",
    rank=100,
    fixable=True,
    source="troubleshooting guide",
    documents=(document("troubleshooting guide"), document("current docs")),
)
def trusted_services_disabled(ctx: Context, finding: FindingFactory) -> list[Finding]:
    registries: dict[str, Registry] = {}
    for credential in identity_credentials(ctx):
        registry = ctx.registries.get(credential.server or "")
        # ACI is a trusted service only when it pulls with a managed identity.
        if registry is not None and pulls_with(ctx, credential) and not is_system_reference(credential.identity or ""):
            registries.setdefault(registry.id.lower(), registry)
    if ctx.definition is not None and not ctx.definition.complete:
        # Only the image from the error message is known, not its credential. A restricted registry
        # without the bypass refuses ACI whatever credential it used, so the registry side decides.
        for image in ctx.definition.images:
            registry = ctx.registries.get(image.registry)
            if registry is not None:
                registries.setdefault(registry.id.lower(), registry)
    return [
        finding(
            f"Registry {registry.name} is network-restricted and does not allow trusted Azure services, "
            "so Azure Container Instances cannot reach it.",
            {
                "registryId": registry.id,
                "loginServer": registry.login_server.lower(),
                "publicNetworkAccess": registry.public_network_access,
                "defaultAction": registry.default_action,
                "networkRuleBypassOptions": registry.bypass,
                "privateEndpoints": list(registry.private_endpoints),
                "ipRules": registry.ip_rules,
                "proposal": "set networkRuleBypassOptions to AzureServices; nothing else changes",
            },
        )
        for registry in registries.values()
        if registry.network_restricted and (registry.bypass or "").lower() == "none"
    ]
