"""``propose-definition``: the corrected definition of the failed group, for a person to deploy.

Nothing is written for it. ``params`` carry ``definition`` (the corrected body, secrets redacted),
``apiVersion``, ``changes``, ``complete`` and ``secretsRedacted``; the gate lets the redeploy
deploy the body only with ``REMEDIATION_APPLY_DEFINITION_FIXES=true`` (see ``remediation.policy``).
"""

from __future__ import annotations

from remediation.actions import FixKind, declare
from remediation.model import CURRENT_ACI_API_VERSION, Action, Context
from remediation.naming import CONTAINER_GROUP_TYPE, follows_naming_rules, is_api_version, shell


def _invariant(action: Action, ctx: Context) -> str | None:
    if action.target.lower() != ctx.signal.resource_id.lower():
        return f"a proposal may only concern the failed group {ctx.signal.resource_id}"
    if not isinstance(action.params.get("definition"), dict):
        return "a proposal must carry the corrected definition"
    return None


def _command(action: Action) -> str | None:
    version = action.params.get("apiVersion", CURRENT_ACI_API_VERSION)
    if (not isinstance(action.params.get("definition"), dict) or not is_api_version(version)
            or not follows_naming_rules(action.target, CONTAINER_GROUP_TYPE)):
        return None
    url = f"https://management.azure.com{action.target}?api-version={version}"
    return (shell("az", "rest", "--method", "put", "--url", url, "--body", "@corrected-definition.json")
            + "  # proposedDefinition, with any redacted secrets filled back in")


PROPOSE_DEFINITION = declare(FixKind(
    name="propose-definition",
    order=30,
    target="container-group",
    writes=False,
    needs_redeploy=True,
    waits_for_propagation=False,
    invariant=_invariant,
    command=_command,
))
