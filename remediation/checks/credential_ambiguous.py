"""ACI_CREDENTIAL_AMBIGUOUS: a registry credential sets both ``username`` and ``identity``, or neither."""

from __future__ import annotations

from remediation.checks import check, document
from remediation.model import Context, Finding


@check(
    "ACI_CREDENTIAL_AMBIGUOUS",
    "A registry credential sets both username and identity, or neither "
    "(AmbiguousImageResitryCredentialType); propose the credential with exactly one.",
)
def credential_ambiguous(ctx: Context) -> list[Finding]:
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
            Finding(
                code="ACI_CREDENTIAL_AMBIGUOUS",
                summary=f"{summary}; ACI needs exactly one of them.",
                evidence={
                    "credentialIndex": credential.index,
                    "server": credential.server,
                    "fieldsSet": fields_set,
                    "problem": "both" if both else "neither",
                    "proposal": "keep server and identity, drop username and password" if both
                    else "set identity to a user-assigned identity attached to the group",
                    "documents": [document("troubleshooting guide")],
                },
                fixable=False,
                source="troubleshooting guide",
            )
        )
    return findings

