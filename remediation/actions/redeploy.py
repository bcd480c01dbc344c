"""``redeploy``: PUT the failed group's own definition again, the last step of a remediation.

``params`` hold at most ``apiVersion`` (never older than identity credentials need). The body is
the definition the gate chose (``remediation.policy.Gate.redeploy_definition``, else the recorded
one); the redeploy stage, not the apply stage, performs it (``remediation.azure.redeploy``).
"""

from __future__ import annotations

from remediation.actions import FixKind, declare
from remediation.model import MIN_IDENTITY_API_VERSION, Action, Context
from remediation.naming import CONTAINER_GROUP_TYPE, follows_naming_rules, shell
from remediation.resource_ids import parse_resource_id


def _invariant(action: Action, ctx: Context) -> str | None:
    if action.target.lower() != ctx.signal.resource_id.lower():
        return f"a redeploy may only target the failed group {ctx.signal.resource_id}"
    if not set(action.params) <= {"apiVersion"}:
        return f"redeploy params may only hold apiVersion, got {sorted(action.params)}"
    version = action.params.get("apiVersion")
    if version is not None and (not isinstance(version, str) or version[:10] < MIN_IDENTITY_API_VERSION):
        return f"redeploy api-version {version!r} is older than {MIN_IDENTITY_API_VERSION}"
    return None


def _command(action: Action) -> str | None:
    if action.status != "skipped" or not follows_naming_rules(action.target, CONTAINER_GROUP_TYPE):
        return None
    group = parse_resource_id(action.target)
    # TEMPLATE_FILE is a placeholder the person replaces; the name after "#" follows ARM's rules
    return (shell("az", "deployment", "group", "create", "--subscription", group.subscription,
                  "--resource-group", group.resource_group, "--template-file", "TEMPLATE_FILE")
            + f"  # TEMPLATE_FILE: the template that deploys {group.name}; redeploy now that the fix is in place")


REDEPLOY = declare(FixKind(
    name="redeploy",
    order=40,
    target="container-group",
    writes=True,
    needs_redeploy=False,
    waits_for_propagation=False,
    invariant=_invariant,
    command=_command,
))
