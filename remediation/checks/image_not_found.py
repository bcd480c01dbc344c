"""ACR_IMAGE_NOT_FOUND: the repository or tag does not exist in the registry."""

from __future__ import annotations

from remediation.checks import check, document
from remediation.model import Context, Finding


@check(
    "ACR_IMAGE_NOT_FOUND",
    "The image's repository, tag or digest does not exist in the registry. Never fixed. An image whose "
    "existence could not be read is not reported here; the gatherer notes why in the context.",
)
def image_not_found(ctx: Context) -> list[Finding]:
    return [
        Finding(
            code="ACR_IMAGE_NOT_FOUND",
            summary=f"Image {status.image.raw} does not exist in registry {status.image.registry}.",
            evidence={
                "image": status.image.raw,
                "loginServer": status.image.registry,
                "repository": status.image.repository,
                "reference": status.image.reference,
                "detail": status.detail,
                "documents": [document("troubleshooting guide")],
            },
            fixable=False,
            source="troubleshooting guide",
        )
        for status in ctx.images
        if status.exists is False
    ]
