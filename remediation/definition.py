"""The attempted container group: read its ARM JSON into a :class:`GroupDefinition`, and redact it.

Accepted body shapes: the ARM resource body (``location``, ``identity``, ``properties``, ``tags``)
as PUT to Resource Manager or returned by GET, and the same inside an ARM template resource
(which also has ``type``, ``name`` and ``apiVersion``; its ``apiVersion`` is used when the caller
does not know the api-version).

Several sources may hold the definition; :func:`choose_definition` decides which one stands for
the failed write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from remediation.errors import InputError
from remediation.images import parse_image
from remediation.model import ErrorInfo, GroupDefinition, ImageRef, RegistryCredential
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


def parse_replayed(resource_id: str, body: Any) -> GroupDefinition:
    """The definition the caller of a replay sent, read as a run reads it (its own ``apiVersion``,
    if any). Raises :class:`InputError` (one line, naming the field) when it cannot be read: that is
    the caller's error, answered before anything runs, never a ``failed`` run."""
    if not isinstance(body, Mapping):
        raise InputError("definition is not a JSON object")
    return parse_definition(resource_id, body, _api_version_of(body), "replay")


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


_IMAGE_IN_MESSAGE = re.compile(r"The image '(?P<image>[^']+)' in container group")


@dataclass(frozen=True)
class DefinitionSources:
    """What each source holds of the attempted container group, for :func:`choose_definition`.

    A body is the group's ARM JSON as that source holds it; None where the source holds none or
    was not read.
    """

    replay: dict[str, Any] | None = None
    """The definition the caller of a replay sent."""
    activity_log: dict[str, Any] | None = None
    """The failed write's request body in the Activity Log."""
    deployment: GroupDefinition | None = None
    """The group in the template of the deployment that made the write, already resolved."""
    existing: dict[str, Any] | None = None
    """The live group."""
    snapshot: dict[str, Any] | None = None
    """The group's last known-good definition, kept after a redeploy."""
    error: ErrorInfo | None = None
    """The failed write's error; ``InaccessibleImage`` names the image that failed."""
    read_notes: Mapping[DefinitionSource, Sequence[str]] = field(default_factory=dict)
    """What reading each source said (a read that failed, a record not found), kept in the
    choice's notes in the order of the sources, so the notes tell the search as it went."""
    from_error_message: bool = True
    """Whether the image the error names may stand for the definition (not in a sweep)."""


@dataclass(frozen=True)
class DefinitionChoice:
    """What :func:`choose_definition` chose, and why."""

    definition: GroupDefinition | None
    """None where no source held a definition and the error names no image."""
    notes: tuple[str, ...] = ()
    """The sources' ``read_notes``, and why a source's definition was not used."""

    @property
    def recovered(self) -> bool:
        """Whether a source held the whole definition, not only the image the error names."""
        return self.definition is not None and self.definition.complete


def choose_definition(resource_id: str, sources: DefinitionSources) -> DefinitionChoice:
    """The definition the failed write attempted: the first source, in this order, that holds one.

    1. ``replay``; one that cannot be read raises :class:`InputError`, as it is the caller's error.
    2. ``activity_log``, 3. ``deployment``: the write's own records.
    4. ``existing``, 5. ``snapshot``: each only where it runs the image the error names, since a
       failed update leaves the previous definition in place, and redeploying that is not what
       the user asked for.
    6. The image the error names (where ``from_error_message``): enough for the registry-side
       checks, never for a redeploy; a note says that no definition could be recovered.

    A body that cannot be read is noted and passed over.
    """
    notes: list[str] = []
    definition: GroupDefinition | None = None
    if sources.replay:
        definition = parse_replayed(resource_id, sources.replay)
    notes.extend(sources.read_notes.get("activity-log", ()))
    if definition is None and sources.activity_log:
        definition = _parse_or_note(resource_id, sources.activity_log, "activity-log", notes)
    notes.extend(sources.read_notes.get("deployment", ()))
    definition = definition or sources.deployment
    notes.extend(sources.read_notes.get("existing", ()))
    if definition is None and sources.existing:
        definition = _stand_in(resource_id, sources.existing, "existing", sources.error, notes)
    if definition is None and sources.snapshot:
        definition = _stand_in(resource_id, sources.snapshot, "snapshot", sources.error, notes)
    if definition is None and sources.from_error_message:
        definition = _from_error_message(resource_id, sources.error)
        notes.append(
            "no definition of the attempted container group could be recovered"
            + (
                f"; diagnosing from the image named in the error ({', '.join(i.raw for i in definition.images)})"
                if definition
                else ""
            )
        )
    return DefinitionChoice(definition, tuple(notes))


def _stand_in(resource_id: str, body: Mapping[str, Any], source: DefinitionSource, error: ErrorInfo | None,
              notes: list[str]) -> GroupDefinition | None:
    """The live group or a snapshot stands for the failed write only if it has the image that failed."""
    definition = _parse_or_note(resource_id, body, source, notes)
    match = _IMAGE_IN_MESSAGE.search(error.message) if error else None
    if definition is None or match is None:
        return definition
    if match.group("image").lower() not in {i.raw.lower() for i in definition.images}:
        notes.append(f"the {definition.source} definition does not run {match.group('image')}, the image that "
                     "failed; it is not what was attempted, so it is not used")
        return None
    return definition


def _from_error_message(resource_id: str, error: ErrorInfo | None) -> GroupDefinition | None:
    """The image ``InaccessibleImage`` names, as a definition of one container."""
    match = _IMAGE_IN_MESSAGE.search(error.message) if error else None
    if match is None:
        return None
    body = {"properties": {"containers": [{"name": "unknown", "properties": {"image": match.group("image")}}]}}
    try:
        return parse_definition(resource_id, body, None, "error-message")
    except InputError:
        return None


def _parse_or_note(
    resource_id: str, body: Mapping[str, Any], source: DefinitionSource, notes: list[str]
) -> GroupDefinition | None:
    try:
        return parse_definition(resource_id, body, _api_version_of(body), source)
    except InputError as exc:
        notes.append(f"the definition from {source} could not be read: {exc}")
        return None


def _api_version_of(body: Mapping[str, Any]) -> str | None:
    value = body.get("apiVersion")
    return str(value) if value else None
