"""Container image references, read the way Docker (and so ACI) reads them.

``name[:tag][@digest]`` where ``name`` is ``[host[:port]/]component[/component...]``:

- the first component is a registry host when it contains ``.`` or ``:``, is ``localhost``, or
  has upper-case letters (Docker's rule); otherwise the registry is ``docker.io`` and a
  single-component name gets the ``library/`` prefix (``nginx`` → ``docker.io/library/nginx``);
- the registry is lower-cased (login servers are host names); repository components must be
  lower-case ``[a-z0-9]`` runs joined by ``.``, ``_``, ``__`` or dashes;
- tags are ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``; digests are ``sha256:<64 hex>`` (or
  ``sha384``/``sha512`` with their lengths).
"""

from __future__ import annotations

import re

from remediation.errors import InputError
from remediation.model import ImageRef

DOCKER_HUB = "docker.io"
ACR_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us")
"""Login-server suffixes of Azure Container Registry in the public, China and US Government clouds."""

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_MAX_NAME_LENGTH = 255


def parse_image(raw: str, *, field: str = "image") -> ImageRef:
    """Parse ``raw`` into an :class:`ImageRef`; raise :class:`InputError` naming ``field`` if invalid."""
    if not isinstance(raw, str) or not raw:
        raise InputError(f"{field} is empty")
    try:
        return _parse(raw)
    except _Invalid as why:
        raise InputError(f"{field} {raw!r} is not a valid image reference: {why}") from None


def is_acr(host: str) -> bool:
    """Whether ``host`` (a login server, port allowed) belongs to Azure Container Registry."""
    name = host.strip().lower().partition(":")[0]
    return name.endswith(ACR_SUFFIXES) and len(name) > len(".azurecr.io")


class _Invalid(Exception):
    """Why a reference is invalid; turned into an InputError naming the field."""


def _parse(raw: str) -> ImageRef:
    if any(ch.isspace() for ch in raw):
        raise _Invalid("it contains whitespace")
    remainder, digest = raw, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        _check_digest(digest)

    tag = None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.match(tag):
            raise _Invalid(f"tag {tag!r} is not valid")

    if not remainder:
        raise _Invalid("the name is empty")
    first, _, rest = remainder.partition("/")
    if rest and (any(ch in first for ch in ".:") or first == "localhost" or first != first.lower()):
        registry, path = _check_host(first), rest
    else:
        registry, path = DOCKER_HUB, remainder
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"

    for component in path.split("/"):
        if not component:
            raise _Invalid("the repository has an empty path component")
        if not _COMPONENT.match(component):
            if component.lower() != component:
                raise _Invalid(f"repository component {component!r} must be lower-case")
            raise _Invalid(f"repository component {component!r} has characters outside [a-z0-9._-]")
    if len(remainder) > _MAX_NAME_LENGTH:
        raise _Invalid(f"the name is longer than {_MAX_NAME_LENGTH} characters")
    return ImageRef(raw=raw, registry=registry, repository=path, tag=tag, digest=digest)


def _check_digest(digest: str) -> None:
    algorithm, _, hex_part = digest.partition(":")
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None or len(hex_part) != expected or not re.fullmatch(r"[0-9a-f]+", hex_part):
        raise _Invalid(f"digest {digest!r} is not sha256:<64 lower-case hex> (or sha384/sha512)")


def _check_host(host: str) -> str:
    name, _, port = host.partition(":")
    if ":" in host and not (port.isdigit() and 0 < int(port) < 65536):
        raise _Invalid(f"registry port {port!r} is not a number from 1 to 65535")
    if not name or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        raise _Invalid(f"registry host {host!r} is not a valid host name")
    return host.lower()
