"""ACR_NOT_FOUND: an image's Azure Container Registry is not visible in the allowed subscriptions."""

from __future__ import annotations

from remediation.checks import FindingFactory, acr_images, check
from remediation.model import Context, Finding


@check(
    "ACR_NOT_FOUND",
    "No registry with the image's login server is visible in the allowed subscriptions. Never fixed.",
    rank=110,
    fixable=False,
    source="troubleshooting guide",
)
def registry_not_found(ctx: Context, finding: FindingFactory) -> list[Finding]:
    missing: dict[str, list[str]] = {}
    for image in acr_images(ctx):
        # Only a registry that was looked up and not found: a missing key means it was never looked for.
        if image.registry in ctx.registries and ctx.registries[image.registry] is None:
            missing.setdefault(image.registry, []).append(image.raw)
    return [
        finding(
            f"No registry with login server {server} is visible in the allowed subscriptions.",
            {
                "loginServer": server,
                "images": images,
                "subscriptionsSearched": "the subscriptions the app may act in",
            },
        )
        for server, images in missing.items()
    ]
