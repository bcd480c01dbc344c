"""ACR_IMAGE_NOT_FOUND: the repository or tag does not exist in the registry."""

from __future__ import annotations

from remediation.checks import FindingFactory, check
from remediation.model import Context, Finding


@check(
    "ACR_IMAGE_NOT_FOUND",
    "The image's repository, tag or digest does not exist in the registry. Never fixed. An image whose "
    "existence could not be read is not reported here; the gatherer notes why in the context.",
    rank=120,
    fixable=False,
    source="troubleshooting guide",
)
def image_not_found(ctx: Context, finding: FindingFactory) -> list[Finding]:
    return [
        finding(
            f"Image {status.image.raw} does not exist in registry {status.image.registry}.",
            {
                "image": status.image.raw,
                "loginServer": status.image.registry,
                "repository": status.image.repository,
                "reference": status.image.reference,
                "detail": status.detail,
            },
        )
        for status in ctx.images
        if status.exists is False
    ]
