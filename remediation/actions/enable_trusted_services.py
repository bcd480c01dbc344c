"""``enable-trusted-services``: let trusted Azure services (ACI among them) past a registry's firewall.

``params`` are exactly :data:`TRUSTED_SERVICES_PATCH`, the one property written; public access,
IP rules and private endpoints stay as they are.
"""

from __future__ import annotations

from remediation.actions import FixKind, declare, find_registry
from remediation.model import Action, Context
from remediation.naming import REGISTRY_TYPE, follows_naming_rules, shell
from remediation.resource_ids import parse_resource_id

TRUSTED_SERVICES_PATCH = {"networkRuleBypassOptions": "AzureServices"}


def _invariant(action: Action, ctx: Context) -> str | None:
    if action.params != TRUSTED_SERVICES_PATCH:
        return f"enable-trusted-services may only write {TRUSTED_SERVICES_PATCH}, got {action.params}"
    registry = find_registry(ctx, action.target)
    if registry is None:
        return f"{action.target} is not one of the container group's registries"
    if not registry.network_restricted:
        # the gather reads the Azure Policy assignments the gate weighs for this write only at
        # network-restricted registries, the only ones the fix is for
        return f"{action.target} is not network-restricted: it has no firewall to let trusted services past"
    return None


def _command(action: Action) -> str | None:
    if action.params != TRUSTED_SERVICES_PATCH or not follows_naming_rules(action.target, REGISTRY_TYPE):
        return None
    registry = parse_resource_id(action.target)
    return shell("az", "acr", "update", "--subscription", registry.subscription,
                 "--resource-group", registry.resource_group, "--name", registry.name,
                 "--allow-trusted-services", "true")


ENABLE_TRUSTED_SERVICES = declare(FixKind(
    name="enable-trusted-services",
    order=20,
    target="registry",
    writes=True,
    needs_redeploy=True,
    waits_for_propagation=True,
    invariant=_invariant,
    command=_command,
))
