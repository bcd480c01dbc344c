"""Definition mistakes → propose the corrected container-group definition (never applied by default).

ACI rejects these definitions before pulling anything, so nothing in Azure needs changing: a
person (or ``REMEDIATION_APPLY_DEFINITION_FIXES=true``) redeploys the corrected body.

| cause | correction |
|---|---|
| ``ACI_CREDENTIAL_AMBIGUOUS`` | keep ``server`` + ``identity``, drop ``username``/``password`` |
| ``ACI_IDENTITY_NOT_ATTACHED`` | add the credential's identity to ``identity.userAssignedIdentities`` |
| ``ACI_SYSTEM_IDENTITY_UNSUPPORTED`` | use the one attached user-assigned identity, else a placeholder |
| ``ACI_CREDENTIAL_SERVER_MISSING`` | ``server`` = the registry of the containers' images |

Every proposal carries ``params``: ``definition`` (the corrected body, secrets redacted),
``apiVersion``, ``changes`` (one line per edit), ``complete`` (false while a placeholder remains)
and ``secretsRedacted`` (the body lost secrets to redaction, so it cannot be deployed as is).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from remediation.actions.propose_definition import PROPOSE_DEFINITION
from remediation.definition import REDACTED
from remediation.errors import InputError
from remediation.images import parse_image
from remediation.model import (
    CURRENT_ACI_API_VERSION,
    MIN_IDENTITY_API_VERSION,
    SYSTEM_IDENTITY_REFERENCES,
    Action,
    Context,
    Finding,
)
from remediation.plan import fix

IDENTITY_PLACEHOLDER = "<resource id of a user-assigned identity allowed to pull from the registry>"
SERVER_PLACEHOLDER = "<registry login server, e.g. myregistry.azurecr.io>"

Body = dict[str, Any]
Correction = Callable[[Body], tuple[list[str], bool]]
"""Edits a body in place; returns the change lines and whether the result is complete."""


def _credentials(body: Body) -> list[dict[str, Any]]:
    creds = body.get("properties", {}).get("imageRegistryCredentials", [])
    return [c for c in creds if isinstance(c, dict)] if isinstance(creds, list) else []


def _identity_block(body: Body) -> dict[str, Any]:
    if not isinstance(body.get("identity"), dict):
        body["identity"] = {}
    identity: dict[str, Any] = body["identity"]
    if not isinstance(identity.get("userAssignedIdentities"), dict):
        identity["userAssignedIdentities"] = {}
    return identity


def _attached(body: Body) -> list[str]:
    uai = body.get("identity", {}).get("userAssignedIdentities") or {}
    return list(uai) if isinstance(uai, dict) else []


def _is_system(reference: str) -> bool:
    return reference.lower() in SYSTEM_IDENTITY_REFERENCES


def _attach(body: Body, identity_id: str) -> bool:
    """Add a user-assigned identity to the group; False when it was already there."""
    identity = _identity_block(body)
    uai: dict[str, Any] = identity["userAssignedIdentities"]
    added = identity_id.lower() not in {k.lower() for k in uai}
    if added:
        uai[identity_id] = {}
    kind = str(identity.get("type") or "None").replace(" ", "").lower()
    if "systemassigned" in kind:
        identity["type"] = "SystemAssigned, UserAssigned"
    else:
        identity["type"] = "UserAssigned"
    return added


def keep_identity_only(body: Body) -> tuple[list[str], bool]:
    changes: list[str] = []
    complete = True
    attached = _attached(body)
    for i, cred in enumerate(_credentials(body)):
        if cred.get("identity") and (cred.get("username") or "password" in cred):
            cred.pop("username", None)
            cred.pop("password", None)
            changes.append(f"imageRegistryCredentials[{i}]: removed username/password, kept server and identity")
        elif not cred.get("identity") and not cred.get("username"):
            if len(attached) == 1:
                cred["identity"] = attached[0]
                changes.append(f"imageRegistryCredentials[{i}]: set identity to the attached {attached[0]}")
            else:
                cred["identity"] = IDENTITY_PLACEHOLDER
                complete = False
                changes.append(f"imageRegistryCredentials[{i}]: set exactly one of username or identity")
    return changes, complete


def attach_credential_identities(body: Body) -> tuple[list[str], bool]:
    changes: list[str] = []
    for i, cred in enumerate(_credentials(body)):
        ref = cred.get("identity")
        if isinstance(ref, str) and ref and not _is_system(ref) and _attach(body, ref):
            changes.append(f"identity.userAssignedIdentities: added {ref} (used by imageRegistryCredentials[{i}])")
    if changes:
        changes.append(f"identity.type: {body['identity']['type']}")
    return changes, True


def use_user_assigned_identity(body: Body) -> tuple[list[str], bool]:
    changes: list[str] = []
    complete = True
    attached = _attached(body)
    for i, cred in enumerate(_credentials(body)):
        ref = cred.get("identity")
        if not (isinstance(ref, str) and _is_system(ref)):
            continue
        if len(attached) == 1:
            cred["identity"] = attached[0]
            changes.append(
                f"imageRegistryCredentials[{i}]: ACI pulls only with a user-assigned identity; "
                f"use the attached {attached[0]}"
            )
        else:
            cred["identity"] = IDENTITY_PLACEHOLDER
            _attach(body, IDENTITY_PLACEHOLDER)
            complete = False
            changes.append(
                f"imageRegistryCredentials[{i}]: ACI pulls only with a user-assigned identity; create one, "
                "grant it AcrPull on the registry, and put its resource id here and in identity.userAssignedIdentities"
            )
    return changes, complete


def login_server_of(image: str) -> str | None:
    """The registry host of an image reference; None for Docker Hub and unparsable references."""
    try:
        registry = parse_image(image).registry
    except InputError:
        return None
    return None if registry in ("docker.io", "index.docker.io") else registry


def _container_properties(body: Body) -> list[dict[str, Any]]:
    props = body.get("properties", {})
    found: list[dict[str, Any]] = []
    for group in ("initContainers", "containers"):
        for container in props.get(group, []) or []:
            inner = container.get("properties") if isinstance(container, dict) else None
            if isinstance(inner, dict):
                found.append(inner)
    return found


def _image_registries(body: Body) -> list[str]:
    registries: list[str] = []
    for container in _container_properties(body):
        image = container.get("image")
        server = login_server_of(image) if isinstance(image, str) else None
        if server and server not in registries:
            registries.append(server)
    return registries


def server_from_images(body: Body) -> tuple[list[str], bool]:
    creds = _credentials(body)
    covered = {str(c["server"]).lower() for c in creds if c.get("server")}
    candidates = [r for r in _image_registries(body) if r not in covered]
    missing = [(i, c) for i, c in enumerate(creds) if not c.get("server")]
    complete = len(candidates) == len(missing)
    changes: list[str] = []
    for i, cred in missing:
        if candidates:
            cred["server"] = candidates.pop(0)
            changes.append(f"imageRegistryCredentials[{i}]: server {cred['server']} from the containers' images")
        else:
            cred["server"] = SERVER_PLACEHOLDER
            complete = False
            changes.append(f"imageRegistryCredentials[{i}]: set server to the registry's login server")
    return changes, complete


def _secrets_redacted(body: Any) -> bool:
    """Whether deploying ``body`` as is would lose a secret that redaction replaced or removed."""
    if isinstance(body, dict):
        if "secureValue" in body or (body.get("username") and "identity" not in body):
            return True  # a secure variable, or a password credential whose password was taken out
        return any(_secrets_redacted(v) for v in body.values())
    if isinstance(body, list):
        return any(_secrets_redacted(v) for v in body)
    return isinstance(body, str) and body == REDACTED


def _propose(correction: Correction, summary: str) -> Callable[[Finding, Context], list[Action]]:
    def planner(finding: Finding, ctx: Context) -> list[Action]:
        if ctx.definition is None:
            return []
        body = copy.deepcopy(ctx.definition.body)
        changes, complete = correction(body)
        if not changes:
            return []
        version = ctx.definition.api_version or CURRENT_ACI_API_VERSION
        if version[:10] < MIN_IDENTITY_API_VERSION:
            version = CURRENT_ACI_API_VERSION
        return [
            Action(
                kind=PROPOSE_DEFINITION.name,
                target=ctx.definition.resource_id,
                detail=summary,
                params={
                    "definition": body,
                    "apiVersion": version,
                    "changes": changes,
                    "complete": complete,
                    "secretsRedacted": _secrets_redacted(body),
                },
                cause=finding.code,
            )
        ]

    return planner


credential_ambiguous = fix(
    "ACI_CREDENTIAL_AMBIGUOUS",
    "Propose the definition with each registry credential using exactly one of username or identity.",
    automatic=False,
)(_propose(keep_identity_only, "Use exactly one of username or identity per registry credential."))

identity_not_attached = fix(
    "ACI_IDENTITY_NOT_ATTACHED",
    "Propose the definition with the credential's identity attached to the group.",
    automatic=False,
)(_propose(attach_credential_identities, "Attach the credential's identity to the container group."))

system_identity_unsupported = fix(
    "ACI_SYSTEM_IDENTITY_UNSUPPORTED",
    "Explain that ACI pulls only with a user-assigned identity; propose one in the credential.",
    automatic=False,
)(_propose(use_user_assigned_identity, "ACI pulls from ACR only with a user-assigned identity."))

credential_server_missing = fix(
    "ACI_CREDENTIAL_SERVER_MISSING",
    "Propose the definition with each credential's server taken from the containers' image references.",
    automatic=False,
)(_propose(server_from_images, "Give every registry credential the registry's login server."))
