"""The attempted container group: read its ARM JSON into a :class:`GroupDefinition`, and redact it.

Accepted body shapes: the ARM resource body (``location``, ``identity``, ``properties``, ``tags``)
as PUT to Resource Manager or returned by GET, and the same inside an ARM template resource
(which also has ``type``, ``name`` and ``apiVersion``; its ``apiVersion`` is used when the caller
does not know the api-version).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from remediation.errors import InputError
from remediation.images import parse_image
from remediation.model import GroupDefinition, ImageRef, RegistryCredential
from remediation.redaction import REDACTED as REDACTED
from remediation.redaction import redact_definition

DefinitionSource = Literal["replay", "activity-log", "deployment", "existing", "snapshot", "error-message"]


def parse_definition(
    resource_id: str, body: Mapping[str, Any], api_version: str | None, source: DefinitionSource
) -> GroupDefinition:
    """Read a container-group body. ``body`` is not changed; the result holds a redacted copy.

    Every container and init container image is parsed (an invalid reference raises
    :class:`InputError` naming the field, e.g. ``properties.containers[0].properties.image``).
    """
    if not isinstance(body, Mapping):
        raise InputError("definition is not a JSON object")
    props = _object(body.get("properties"), "properties")
    identity = _object(body.get("identity"), "identity")
    assigned = _object(identity.get("userAssignedIdentities"), "identity.userAssignedIdentities")
    credentials = _array(props.get("imageRegistryCredentials"), "properties.imageRegistryCredentials")
    template_api_version = body.get("apiVersion") if isinstance(body.get("apiVersion"), str) else None

    return GroupDefinition(
        resource_id=resource_id,
        body=redact(body),
        api_version=api_version or template_api_version,
        source=source,
        location=_str(body.get("location")),
        os_type=_str(props.get("osType")),
        subnet_ids=tuple(
            str(subnet.get("id")) if isinstance(subnet, Mapping) else str(subnet)
            for subnet in _array(props.get("subnetIds"), "properties.subnetIds")
        )
        # before api-version 2021-07-01 a VNet-injected group named a network profile instead
        + tuple(str(p.get("id")) for p in [props.get("networkProfile")] if isinstance(p, Mapping) and p.get("id")),
        identity_type=_str(identity.get("type")),
        user_assigned_identities=tuple(str(key) for key in assigned),
        credentials=tuple(_credential(i, entry) for i, entry in enumerate(credentials)),
        images=_images(props),
        tags={str(k): str(v) for k, v in _object(body.get("tags"), "tags").items()},
    )


def redact(body: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``body`` without its secrets, everything else kept as it was: the rule of
    :func:`remediation.redaction.redact_definition` (passwords, secure values, keys, secret volume
    files, a token in a ``gitRepo`` URL)."""
    return redact_definition(body)


def _credential(index: int, entry: Any) -> RegistryCredential:
    where = f"properties.imageRegistryCredentials[{index}]"
    if not isinstance(entry, Mapping):
        raise InputError(f"{where} is not a JSON object")
    server = _str(entry.get("server"))
    return RegistryCredential(
        index=index,
        # Login servers are host names: compare and look up in lower case.
        server=server.lower() if server else None,
        username=_str(entry.get("username")),
        has_password=bool(entry.get("password")),
        identity=_str(entry.get("identity")),
        identity_url=_str(entry.get("identityUrl")),
    )


def _images(props: Mapping[str, Any]) -> tuple[ImageRef, ...]:
    images: list[ImageRef] = []
    for group_key in ("initContainers", "containers"):
        for i, container in enumerate(_array(props.get(group_key), f"properties.{group_key}")):
            where = f"properties.{group_key}[{i}]"
            if not isinstance(container, Mapping):
                raise InputError(f"{where} is not a JSON object")
            container_props = _object(container.get("properties"), f"{where}.properties")
            raw = container_props.get("image")
            if not isinstance(raw, str) or not raw:
                raise InputError(f"{where}.properties.image is missing")
            image = parse_image(raw, field=f"{where}.properties.image")
            if image not in images:
                images.append(image)
    return tuple(images)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where} is not a JSON object")
    return value


def _array(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{where} is not an array")
    return value


def _str(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None
