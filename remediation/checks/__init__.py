"""Checks: one file per cause code, each a pure function from a :class:`Context` to findings.

A check is registered with the :func:`check` decorator, the way ruff registers rules::

    @check("ACR_TRUSTED_SERVICES_DISABLED", "The registry is network-restricted and ...")
    def trusted_services_disabled(ctx: Context) -> list[Finding]: ...

:func:`all_checks` returns them in the order of the contract's cause table (``CHECK_MODULES``),
whatever order they were imported in; :func:`run_checks` runs them all. Checks never call Azure,
and a check whose data is missing (an identity that could not be read, assignments that could not
be listed) does not fire: the gatherer has put the reason in ``ctx.notes``.

Evidence keys read by the plan stage: ``registryId``, ``loginServer``, ``principalId``,
``identity`` (pull permission and ABAC), ``repositories`` (ABAC), ``registryId`` (trusted
services), ``credentialIndex`` (definition causes); every finding also lists ``documents``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from remediation.images import is_acr
from remediation.model import (
    SYSTEM_IDENTITY_REFERENCES,
    Context,
    Finding,
    ImageRef,
    Registry,
    RegistryCredential,
    RoleAssignment,
)

CheckFunction = Callable[[Context], list[Finding]]

TROUBLESHOOTING_GUIDE = (
    "https://learn.microsoft.com/troubleshoot/azure/azure-container-instances/management/"
    "acr-image-pull-failures-managed-identity"
)
CURRENT_DOCS = "https://learn.microsoft.com/azure/container-instances/using-azure-container-registry-mi"

IMAGE_PULL_ERROR_CODES = frozenset({
    "InvalidImageRegistryCredentialType",
    "AmbiguousImageResitryCredentialType",  # sic: the service's own spelling
    "InvalidImageRegistryIdentity",
    "InvalidRequestContent",
    "InaccessibleImage",
})
"""The error codes of the troubleshooting guide: a failed write with one of them is an image-pull failure."""


def is_image_pull_error(code: str, message: str) -> bool:
    """Whether a failed write's error is one of the guide's image-pull failures.

    ``InvalidRequestContent`` is ARM's answer to any body it cannot read; it is an image-pull
    problem only when it is about ``imageRegistryCredentials``.
    """
    if code == "InvalidRequestContent":
        return "imageregistrycredentials" in message.lower()
    return code in IMAGE_PULL_ERROR_CODES

CHECK_MODULES = (
    "api_version_too_old",
    "credential_ambiguous",
    "identity_not_attached",
    "system_identity_unsupported",
    "credential_server_missing",
    "vnet_unsupported",
    "windows_unsupported",
    "acr_pull_permission_missing",
    "abac_repository_permissions",
    "trusted_services_disabled",
    "registry_not_found",
    "image_not_found",
    "unknown",
)
"""The modules of this package, in the order of the contract's cause table; ``unknown`` is last."""


@dataclass(frozen=True)
class Check:
    """A registered check: its cause code, what it looks for, and the function."""

    code: str
    doc: str
    run: CheckFunction


_REGISTERED: dict[str, Check] = {}


def check(code: str, doc: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the check for ``code`` (one check per code)."""

    def register(function: CheckFunction) -> CheckFunction:
        existing = _REGISTERED.get(code)
        if existing is not None and existing.run.__qualname__ != function.__qualname__:
            raise ValueError(f"two checks registered for {code}")
        _REGISTERED[code] = Check(code, doc, function)
        return function

    return register


def all_checks() -> list[Check]:
    """Every check, in the order of ``CHECK_MODULES`` (checks registered from elsewhere last)."""
    for module in CHECK_MODULES:
        importlib.import_module(f"{__name__}.{module}")

    def position(registered: Check) -> int:
        module = registered.run.__module__.rsplit(".", 1)[-1]
        return CHECK_MODULES.index(module) if module in CHECK_MODULES else len(CHECK_MODULES)

    return sorted(_REGISTERED.values(), key=position)


def run_checks(ctx: Context) -> list[Finding]:
    """All findings for ``ctx``, check by check in the documented order."""
    return [finding for registered in all_checks() for finding in registered.run(ctx)]


# --- what several checks read ----------------------------------------------------------------


def document(title: str, *, lists_cause: bool = True, note: str = "") -> dict[str, Any]:
    """A document entry for a finding's ``documents`` evidence."""
    url = {"troubleshooting guide": TROUBLESHOOTING_GUIDE, "current docs": CURRENT_DOCS}[title]
    entry: dict[str, Any] = {"title": title, "url": url, "listsCause": lists_cause}
    if note:
        entry["note"] = note
    return entry


def is_system_reference(identity: str) -> bool:
    return identity.strip().lower() in SYSTEM_IDENTITY_REFERENCES


def identity_credentials(ctx: Context) -> list[RegistryCredential]:
    """The group's registry credentials that name an identity (empty without a definition)."""
    if ctx.definition is None:
        return []
    return [c for c in ctx.definition.credentials if c.identity]


def images_from(ctx: Context, server: str) -> list[ImageRef]:
    """The group's images pulled from ``server`` (a login server, any case)."""
    if ctx.definition is None:
        return []
    return [image for image in ctx.definition.images if image.registry == server.lower()]


def acr_images(ctx: Context) -> list[ImageRef]:
    """The group's images whose registry is an Azure Container Registry."""
    if ctx.definition is None:
        return []
    return [image for image in ctx.definition.images if is_acr(image.registry)]


def pulls_with(ctx: Context, credential: RegistryCredential) -> bool:
    """Whether ``credential`` is used for a pull: an image comes from its server (or images are unknown)."""
    if not credential.server or ctx.definition is None:
        return False
    return not ctx.definition.images or bool(images_from(ctx, credential.server))


@dataclass(frozen=True)
class PullSubject:
    """An identity credential whose registry, identity and role assignments were all read."""

    credential: RegistryCredential
    registry: Registry
    principal_id: str
    assignments: tuple[RoleAssignment, ...]

    def evidence(self) -> dict[str, Any]:
        """Who pulls from where: the evidence both permission checks start from."""
        return {
            "credentialIndex": self.credential.index,
            "identity": self.credential.identity,
            "principalId": self.principal_id,
            "registryId": self.registry.id,
            "loginServer": self.registry.login_server.lower(),
        }


def pull_subjects(ctx: Context) -> list[PullSubject]:
    """Identity credentials used for a pull whose permissions can be decided from ``ctx``.

    Left out (so no permission finding fires): system-identity references, credentials whose
    registry was not found or not looked up, identities that could not be read or have no
    principal, and principals whose assignments could not be listed.
    """
    subjects = []
    for credential in identity_credentials(ctx):
        identity = (credential.identity or "").lower()
        if is_system_reference(identity) or not pulls_with(ctx, credential):
            continue
        registry = ctx.registries.get(credential.server or "")
        found = ctx.identities.get(identity)
        if registry is None or found is None or not found.found or not found.principal_id:
            continue
        assignments = ctx.assignments.get(found.principal_id.lower())
        if assignments is not None:
            subjects.append(PullSubject(credential, registry, found.principal_id, assignments))
    return subjects
