"""ACI_CREDENTIAL_AMBIGUOUS: a registry credential sets both ``username`` and ``identity``, or neither."""

from __future__ import annotations

from remediation.checks import FindingFactory, check
from remediation.model import Context, Finding


@check(
    "ACI_CREDENTIAL_AMBIGUOUS",
    "A registry credential sets both username and identity, or neither "
    "(AmbiguousImageResitryCredentialType); propose the credential with exactly one.",
    rank=20,
    fixable=False,
    source="troubleshooting guide",
)
def credential_ambiguous(ctx: Context, finding: FindingFactory) -> list[Finding]:
    if ctx.definition is None:
        return []
    findings = []
    for credential in ctx.definition.credentials:
        both = bool(credential.username and credential.identity)
        neither = not credential.username and not credential.identity
        if not (both or neither):
            continue
        fields_set = [
            name
            for name, is_set in (
                ("username", bool(credential.username)),
                ("password", credential.has_password),
                ("identity", bool(credential.identity)),
            )
            if is_set
        ]
        summary = (
            f"imageRegistryCredentials[{credential.index}] sets both username and identity"
            if both
            else f"imageRegistryCredentials[{credential.index}] sets neither username nor identity"
        )
        findings.append(
            finding(
                f"{summary}; ACI needs exactly one of them.",
                {
                    "credentialIndex": credential.index,
                    "server": credential.server,
                    "fieldsSet": fields_set,
                    "problem": "both" if both else "neither",
                    "proposal": "keep server and identity, drop username and password" if both
                    else "set identity to a user-assigned identity attached to the group",
                },
            )
        )
    return findings
