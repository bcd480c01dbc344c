"""UNKNOWN: an image-pull failure that no other check explains; the raw error is shown as it came."""

from __future__ import annotations

from remediation.checks import all_checks, check, document, is_image_pull_error
from remediation.model import Context, Finding


@check(
    "UNKNOWN",
    "The write failed with an image-pull error code but no other check explains it; the report shows "
    "the raw error and what could not be read.",
)
def unknown(ctx: Context) -> list[Finding]:
    if ctx.error is None or not is_image_pull_error(ctx.error.code, ctx.error.message):
        return []
    if any(registered.run(ctx) for registered in all_checks() if registered.code != "UNKNOWN"):
        return []
    return [
        Finding(
            code="UNKNOWN",
            summary=f"The write failed with {ctx.error.code}, and no check explains it.",
            evidence={
                "errorCode": ctx.error.code,
                "errorMessage": ctx.error.message,
                "errorSource": ctx.error.source,
                "notes": list(ctx.notes),
                "documents": [document("troubleshooting guide")],
            },
            fixable=False,
            source="troubleshooting guide",
        )
    ]
