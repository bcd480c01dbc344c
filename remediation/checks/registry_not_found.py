"""ACR_NOT_FOUND: an image's Azure Container Registry is not visible in the allowed subscriptions."""

from __future__ import annotations

from remediation.checks import acr_images, check, document
from remediation.model import Context, Finding


@check(
    "ACR_NOT_FOUND",
    "No registry with the image's login server is visible in the allowed subscriptions. Never fixed.",
)
def registry_not_found(ctx: Context) -> list[Finding]:
    missing: dict[str, list[str]] = {}
    for image in acr_images(ctx):
        # Only a registry that was looked up and not found: a missing key means it was never looked for.
        if image.registry in ctx.registries and ctx.registries[image.registry] is None:
            missing.setdefault(image.registry, []).append(image.raw)
    return [
        Finding(
            code="ACR_NOT_FOUND",
            summary=f"No registry with login server {server} is visible in the allowed subscriptions.",
            evidence={
                "loginServer": server,
                "images": images,
                "subscriptionsSearched": "the subscriptions the app may act in",
                "documents": [document("troubleshooting guide")],
            },
            fixable=False,
            source="troubleshooting guide",
        )
        for server, images in missing.items()
    ]
