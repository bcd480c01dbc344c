"""Checks: one file per cause code, each a pure function from a :class:`Context` to findings.

A check is registered with the :func:`check` decorator, the way ruff registers rules; the
registration declares the cause once, and the check builds its findings with the ``finding``
factory it is handed (code, fixability, source and ``documents`` evidence filled in)::

    @check("ACR_TRUSTED_SERVICES_DISABLED", "The registry is network-restricted and ...",
           rank=100, fixable=True, source="troubleshooting guide")
    def trusted_services_disabled(ctx: Context, finding: FindingFactory) -> list[Finding]:
        return [finding(f"Registry {name} is network-restricted ...", {"registryId": ...})]

Adding a module here adds a check; the package imports every module in it. :func:`all_checks`
returns them by ``rank`` (the contract's cause table order, whatever order they were imported
in); :func:`run_checks` runs them all and falls back to :data:`UNKNOWN` for an image-pull
failure that none explains; :func:`causes` lists every code a report can carry. Checks never call
Azure, and a check whose data is missing (an identity that could not be read, assignments that
could not be listed) does not fire: the gatherer has put the reason in ``ctx.notes``.

Evidence keys read by the plan stage: ``registryId``, ``loginServer``, ``principalId``,
``identity`` (pull permission and ABAC), ``repositories`` (ABAC), ``registryId`` (trusted
services), ``credentialIndex`` (definition causes); every finding also lists ``documents``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Sequence
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
from remediation.permissions import explain_repository_read, repository_roles_excluding

FindingFactory = Callable[[str, dict[str, Any]], Finding]
"""``finding(summary, evidence)``: a finding of the check's cause, handed to the check."""

CheckFunction = Callable[[Context, FindingFactory], list[Finding]]

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


PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET_ERROR = "PrivateEndpointCreationNotAllowedAsSubnetIsDelegated"
"""Network's code for a private endpoint PUT into a delegated subnet (MicrosoftDocs/SupportArticles-docs,
support/azure/private-link/troubleshoot-private-endpoint-creation-failed.md, ms.date 2026-06-12)."""


def is_image_pull_failure(ctx: Context) -> bool:
    """Whether the context's failed write is one the guide covers: a container group's image-pull
    error (:func:`is_image_pull_error`), or a registry's private endpoint refused because its subnet
    is delegated (the guide's "ACR private endpoint uses the ACI-delegated subnet"). A private
    endpoint of anything else, or whose definition could not be read, is not."""
    if ctx.error is None:
        return False
    network = ctx.network
    if network is not None and network.failed_endpoint is not None:
        return ctx.error.code == PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET_ERROR and bool(network.failed_endpoint.targets)
    return is_image_pull_error(ctx.error.code, ctx.error.message)


@dataclass(frozen=True)
class Document:
    """A Microsoft document a cause comes from: its title, address and revision date (``ms.date``)."""

    title: str
    url: str
    date: str
    """``YYYY-MM-DD``: the revision whose facts the product follows."""


DOCUMENTS: dict[str, Document] = {
    # MicrosoftDocs/SupportArticles-docs support/azure/azure-container-instances/management/
    # acr-image-pull-failures-managed-identity.md, commit 0e73d0e41891c4b8bbec33e7400c43ee2b61ac27
    "troubleshooting guide": Document(
        "Container group fails to pull Azure Container Registry images using managed identity authentication",
        TROUBLESHOOTING_GUIDE, "2026-09-09"),
    # MicrosoftDocs/azure-compute-docs articles/container-instances/using-azure-container-registry-mi.md
    "current docs": Document(
        "Deploy to Azure Container Instances from Azure Container Registry using a managed identity",
        CURRENT_DOCS, "2026-07-25"),
    # MicrosoftDocs/azure-management-docs articles/container-registry/
    # container-registry-rbac-abac-repository-permissions.md, commit d94038de5a6ccc5b3bb80a22e91b15891e929653
    "ACR ABAC repository permissions": Document(
        "Azure attribute-based access control (Azure ABAC) repository permissions in Azure Container Registry",
        "https://learn.microsoft.com/azure/container-registry/container-registry-rbac-abac-repository-permissions",
        "2025-12-11"),
    # MicrosoftDocs/azure-management-docs articles/container-registry/container-registry-rbac-custom-roles.md,
    # commit 064a6550eb2d8f5a38ef9944e872f38ed7fed334
    "ACR custom roles": Document(
        "Azure Container Registry custom roles",
        "https://learn.microsoft.com/azure/container-registry/container-registry-rbac-custom-roles", "2025-04-24"),
    # MicrosoftDocs/azure-docs articles/role-based-access-control/troubleshooting.md,
    # commit 012ad308577ca7a4bcf96132a0e71b2819fa4a98 ("Role assignment changes are not being detected")
    "RBAC troubleshooting": Document(
        "Troubleshoot Azure RBAC", "https://learn.microsoft.com/azure/role-based-access-control/troubleshooting",
        "2023-09-20"),
    # MicrosoftDocs/azure-docs articles/role-based-access-control/conditions-faq.md,
    # commit 4f3138fb00cb8ddd75692b995ee429e68966b614
    "RBAC conditions FAQ": Document(
        "FAQ for Azure role assignment conditions",
        "https://learn.microsoft.com/azure/role-based-access-control/conditions-faq", "2023-05-09"),
}
"""Every document a cause may cite, by the short name checks use (``source``, :func:`document`)."""


def document(name: str, *, lists_cause: bool = True, note: str = "") -> dict[str, Any]:
    """A document entry for a finding's ``documents`` evidence: which document (``name``, its
    ``title``, ``url`` and revision ``date``), and whether it lists the cause itself."""
    known = DOCUMENTS[name]
    entry: dict[str, Any] = {"name": name, "title": known.title, "url": known.url, "date": known.date,
                             "listsCause": lists_cause}
    if note:
        entry["note"] = note
    return entry


@dataclass(frozen=True, kw_only=True)
class Cause:
    """A cause code as reports carry it: what it means, whether it is fixed, which documents list it."""

    code: str
    doc: str
    fixable: bool
    source: str
    """The document the cause comes from, by its :data:`DOCUMENTS` name (``troubleshooting guide``, ...)."""
    documents: tuple[dict[str, Any], ...]

    def finding(self, summary: str, evidence: dict[str, Any]) -> Finding:
        """A finding of this cause: ``evidence`` followed by the cause's ``documents``."""
        return Finding(
            code=self.code,
            summary=summary,
            evidence={**evidence, "documents": [dict(entry) for entry in self.documents]},
            fixable=self.fixable,
            source=self.source,
        )


@dataclass(frozen=True, kw_only=True)
class Check(Cause):
    """A registered check: its cause, its place in a report, and the function that looks for it."""

    rank: int
    """Findings are reported by ascending rank: the order of the contract's cause table."""
    function: CheckFunction

    def run(self, ctx: Context) -> list[Finding]:
        """The check's findings for ``ctx``."""
        return self.function(ctx, self.finding)


UNKNOWN = Cause(
    code="UNKNOWN",
    doc="The write failed with an image-pull error code but no check explains it; the report shows the raw "
    "error and what could not be read.",
    fixable=False,
    source="troubleshooting guide",
    documents=(document("troubleshooting guide"),),
)
"""The fallback of :func:`run_checks`, not a check: an image-pull failure where no check fires."""

_REGISTERED: dict[str, Check] = {}


def check(
    code: str,
    doc: str,
    *,
    rank: int,
    fixable: bool,
    source: str,
    documents: Sequence[dict[str, Any]] | None = None,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the check for ``code`` (one check per code, one per rank).

    ``documents`` are the entries of every finding's ``documents`` evidence (:func:`document`);
    by default the ``source`` document alone.
    """
    if code == UNKNOWN.code:
        raise ValueError(f"{code} is the fallback of run_checks, not a check")

    def register(function: CheckFunction) -> CheckFunction:
        registered = Check(
            code=code,
            doc=doc,
            fixable=fixable,
            source=source,
            documents=tuple(documents) if documents is not None else (document(source),),
            rank=rank,
            function=function,
        )
        for other in _REGISTERED.values():
            if _same_function(other.function, function):
                continue  # the same module imported again
            if other.code == code:
                raise ValueError(f"two checks registered for {code}")
            if other.rank == rank:
                raise ValueError(f"checks {other.code} and {code} share rank {rank}")
        _REGISTERED[code] = registered
        return function

    return register


def all_checks() -> list[Check]:
    """Every registered check, by rank."""
    return sorted(_REGISTERED.values(), key=lambda registered: registered.rank)


def causes() -> list[Cause]:
    """Every cause code a report can carry, in report order: the checks, then :data:`UNKNOWN`."""
    return [*all_checks(), UNKNOWN]


def run_checks(ctx: Context) -> list[Finding]:
    """All findings for ``ctx``, check by check by rank.

    An image-pull failure that no check explains gets the one :data:`UNKNOWN` finding instead,
    with the raw error and the gatherer's notes.
    """
    findings = [finding for registered in all_checks() for finding in registered.run(ctx)]
    if findings or ctx.error is None or not is_image_pull_failure(ctx):
        return findings
    return [
        UNKNOWN.finding(
            f"The write failed with {ctx.error.code}, and no check explains it.",
            {
                "errorCode": ctx.error.code,
                "errorMessage": ctx.error.message,
                "errorSource": ctx.error.source,
                "notes": list(ctx.notes),
            },
        )
    ]


def _same_function(a: CheckFunction, b: CheckFunction) -> bool:
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


# --- what several checks read ----------------------------------------------------------------


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


@dataclass(frozen=True)
class RepositoryAccess:
    """What an identity may read of an ABAC-mode registry's repositories the group pulls."""

    missing: tuple[str, ...]
    """Repositories no assignment lets it read."""
    excluding: tuple[RoleAssignment, ...]
    """Its repository roles whose condition excludes a missing repository (any conditioned
    repository role excludes every repository its condition does not name)."""
    considered: dict[str, list[dict[str, Any]]]
    """Each repository's verdicts, as evidence."""
    decided: bool
    """False when some assignment's role definition could not be read."""


def repository_access(ctx: Context, subject: PullSubject) -> RepositoryAccess:
    """:class:`RepositoryAccess` of ``subject`` on its (ABAC-mode) registry, for the repositories pulled."""
    registry = subject.registry
    repositories = sorted({i.repository for i in images_from(ctx, registry.login_server)})
    missing: list[str] = []
    excluding: list[RoleAssignment] = []
    considered: dict[str, list[dict[str, Any]]] = {}
    decided = True
    for repository in repositories:
        verdicts = explain_repository_read(subject.assignments, ctx.role_definitions, registry.id, repository,
                                           custom_wildcards=ctx.rbac.custom_wildcards)
        considered[repository] = [v.as_evidence() for v in verdicts]
        decided = decided and all(v.decided for v in verdicts)
        if not any(v.grants for v in verdicts):
            missing.append(repository)
            excluding.extend(repository_roles_excluding(subject.assignments, ctx.role_definitions, registry.id,
                                                        repository, custom_wildcards=ctx.rbac.custom_wildcards))
    return RepositoryAccess(tuple(missing), tuple(dict.fromkeys(excluding)), considered, decided)


def unreadable_repositories(ctx: Context) -> Iterator[tuple[PullSubject, RepositoryAccess]]:
    """Each pull subject on an ABAC-mode registry whose identity, as decided, cannot read a pulled
    repository, with its :class:`RepositoryAccess` (the two ABAC checks tell apart whether a held
    role's condition is what leaves it out)."""
    for subject in pull_subjects(ctx):
        if subject.registry.abac:
            access = repository_access(ctx, subject)
            if access.missing and access.decided:
                yield subject, access


def _discover() -> None:
    """Import every check module in this package; importing one registers its check."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_discover()
