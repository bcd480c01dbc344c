"""ACI_CREDENTIAL_SERVER_MISSING: a registry credential has no ``server``."""

from __future__ import annotations

from remediation.checks import FindingFactory, check
from remediation.model import Context, Finding


@check(
    "ACI_CREDENTIAL_SERVER_MISSING",
    "A registry credential has no server (InvalidRequestContent); propose the server from the images.",
    rank=50,
    fixable=False,
    source="troubleshooting guide",
)
def credential_server_missing(ctx: Context, finding: FindingFactory) -> list[Finding]:
    if ctx.definition is None:
        return []
    covered = {c.server for c in ctx.definition.credentials if c.server}
    candidates = sorted({i.registry for i in ctx.definition.images if i.registry != "docker.io"} - covered)
    return [
        finding(
            f"imageRegistryCredentials[{credential.index}] has no server.",
            {
                "credentialIndex": credential.index,
                "field": "server",
                "candidateServers": candidates,
                "proposedServer": candidates[0] if len(candidates) == 1 else None,
            },
        )
        for credential in ctx.definition.credentials
        if not credential.server
    ]
