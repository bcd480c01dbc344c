"""Azure Container Instances (``azure-mgmt-containerinstance``): container groups.

A PUT is checked synchronously, in the order ACI checks it (credential shape, api-version,
credential type, identity list, the group's identities, then the image pull as the group
would perform it); a failure answers 400 in ARM's shape with the service's own code and
message. A valid group answers 201/200 ``Pending`` and becomes ``Succeeded`` (containers
Running, instance-view events) when its async operation completes.

With ``behaviour.pullFailureMode: async`` the pull happens once the create is accepted: a pull
that fails then ends the operation ``Failed`` (the group stays, ``Failed``, with ACI's
``Pulling``/``Failed``/``BackOff`` events), and ARM records and raises the failure at that point.
``behaviour.eventsLagSeconds`` makes instance-view events show up late, and a fault
``{"match": "PULL <image pattern>", "pull": "fail", "times": n}`` fails matching pulls.

The deployments surface creates groups inside template deployments with :func:`validate`
and :func:`provision`, the same two steps the PUT handler uses.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from .. import network, rbac
from ..arm import activity_record, log_started, not_found, page, record_write, require_resource_group, resource_id_of
from ..server import ArmError, Request, Response, may_read, route
from ..world import World, iso, parse_iso
from .containerregistry import as_aci_pulls_see_it
from .registry_data import resolve_reference

TYPE = "Microsoft.ContainerInstance/containerGroups"
WRITE = f"{TYPE}/write"
READ = f"{TYPE}/read"
DELETE = f"{TYPE}/delete"
_BASE = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups"

MIN_IDENTITY_API_VERSION = "2021-07-01"
"""The first ACI api-version that accepts ``identity`` in ``imageRegistryCredentials``."""

_ACR_HOST_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us", ".azurecr.de")
_SYSTEM_IDENTITY_NAMES = ("[system]", "system")

# PUTs still provisioning, per world: group id (lower) -> operation id. A GET settles a due
# operation, so readers see Succeeded after the delay even when nobody polls the operation.
_pending_by_world: weakref.WeakKeyDictionary[World, dict[str, str]] = weakref.WeakKeyDictionary()


def _pending(world: World) -> dict[str, str]:
    with world.lock:
        return _pending_by_world.setdefault(world, {})


# --- image references ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """``[host/]repository[:tag][@digest]``; ``host`` is None for Docker Hub short names."""

    host: str | None
    repository: str
    tag: str | None
    digest: str | None


def parse_image(image: str) -> ImageRef:
    rest = image.strip()
    digest: str | None = None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
    host: str | None = None
    first, sep, remainder = rest.partition("/")
    # Docker's rule: the first component is a registry host when it looks like one.
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, rest = first.lower(), remainder
    tag: str | None = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(host, rest.lower(), tag, digest)


def _is_acr_host(host: str) -> bool:
    return host.lower().endswith(_ACR_HOST_SUFFIXES)


# --- validation ---------------------------------------------------------------------------


def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def _end_position(body: dict[str, Any], path: list[str | int], raw: bytes | None) -> int:
    """Where JSON.NET stops reading the object at ``path`` (it reports the object's end).

    Uses the separators of the raw request when re-serializing reproduces it (the Python
    SDK sends ``json.dumps`` defaults), else ARM's compact form as in template deployments.
    """
    separators = (",", ":")
    if raw:
        text = raw.decode("utf-8", "replace").strip()
        for candidate in ((", ", ": "), (",", ":")):
            if json.dumps(body, separators=candidate) == text:
                separators = candidate
                break
    if not path:
        return len(json.dumps(body, separators=separators))
    marker = f"object-{uuid.uuid4()}"
    marked = copy.deepcopy(body)
    parent: Any = marked
    target: Any = body
    for step in path[:-1]:
        parent = parent[step]
    for step in path:
        target = target[step]
    parent[path[-1]] = marker
    start = json.dumps(marked, separators=separators).index(json.dumps(marker))
    return start + len(json.dumps(target, separators=separators))


def _not_deserializable(prop: str, json_path: str, position: int) -> dict[str, Any]:
    return _error("InvalidRequestContent",
                  "The request content was invalid and could not be deserialized: "
                  f"'Required property '{prop}' not found in JSON. Path '{json_path}', line 1, position {position}.'.")


def _api_older_than(api_version: str, floor: str) -> bool:
    date = api_version.strip()[:10]
    return len(date) == 10 and date < floor


def _identity_keys(body: dict[str, Any]) -> dict[str, str]:
    """The group's user-assigned identity ids, lower-cased -> as written."""
    identity = body.get("identity") or {}
    assigned = identity.get("userAssignedIdentities") or {}
    return {str(k).rstrip("/").lower(): str(k) for k in assigned}


def _check_definition(world: World, name: str, body: Any, api_version: str,
                      raw: bytes | None) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        return _error("InvalidRequestContent",
                      "The request content was invalid and could not be deserialized: "
                      "'The container group definition must be a JSON object.'.")
    if not body.get("location"):
        return _error("LocationRequired", "The location property is required for this definition.")
    props = body.get("properties")
    if not isinstance(props, dict):
        return _not_deserializable("properties", "", _end_position(body, [], raw))
    if not isinstance(props.get("containers"), list):
        return _not_deserializable("containers", "properties", _end_position(body, ["properties"], raw))
    creds = props.get("imageRegistryCredentials") or []
    for key, items in (("containers", props["containers"]), ("imageRegistryCredentials", creds)):
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            return _error("InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                          f"'Unexpected value in 'properties.{key}'; expected a list of objects.'.")
    for i, cred in enumerate(creds):
        if cred.get("server") is None:
            position = _end_position(body, ["properties", "imageRegistryCredentials", i], raw)
            return _not_deserializable("server", f"properties.imageRegistryCredentials[{i}]", position)
    if _api_older_than(api_version, MIN_IDENTITY_API_VERSION) and any(c.get("identity") for c in creds):
        return _error("InvalidImageRegistryCredentialType",
                      f"Identity in 'imageRegistryCredentials' of container group '{name}' is not supported.")
    for cred in creds:
        if bool(cred.get("username")) == bool(cred.get("identity")):
            # "Resitry" is the service's own spelling.
            return _error("AmbiguousImageResitryCredentialType",
                          f"The registry credential type in the 'imageRegistryCredentials' of container group "
                          f"'{name}' cannot be detected. Please set exactly one of username or identity")
    attached = _identity_keys(body)
    for cred in creds:
        ident = cred.get("identity")
        if not ident:
            continue
        key = str(ident).rstrip("/").lower()
        if key in _SYSTEM_IDENTITY_NAMES or key not in attached:
            return _error("InvalidImageRegistryIdentity",
                          f"The identity in the 'imageRegistryCredentials' of container group '{name}' "
                          "not found in container group identity list.")
    for written in attached.values():
        found = world.get(written)
        if found is None or str(found.get("type", "")).lower() != "microsoft.managedidentity/userassignedidentities":
            # ARM's wording when the managed identity service cannot find a user-assigned identity.
            return _error("FailedIdentityOperation",
                          f"Identity operation for resource '{name}' failed with error 'Failed to perform resource "
                          "identity operation. Status: 'NotFound'. Response: '{\"error\":{\"code\":\"NotFound\","
                          f"\"message\":\"Resource '{written}' does not exist or one of its queried "
                          "reference-property objects are not present.\"}}'.'.")
    return None


def _restricted(registry_props: dict[str, Any]) -> bool:
    public = str(registry_props.get("publicNetworkAccess", "Enabled")).lower()
    default_action = str((registry_props.get("networkRuleSet") or {}).get("defaultAction", "Allow")).lower()
    return public == "disabled" or default_action == "deny"


def _may_pull(world: World, principal: str, registry: dict[str, Any], repository: str) -> bool:
    mode = str(registry.get("properties", {}).get("roleAssignmentMode", "LegacyRegistryPermissions"))
    if mode.lower() == "abacrepositorypermissions":
        # ABAC mode honours only the repository data actions (AcrPull and Owner do not count).
        attributes = rbac.repository_attributes(repository)
        return world.allows(principal, rbac.REPO_CONTENT_READ, registry["id"], data=True,
                            request_attributes=attributes, resource_attributes=attributes)
    return world.allows(principal, rbac.PULL_ACTION, registry["id"])


def _image_exists(world: World, login_server: str, ref: ImageRef) -> bool:
    # The registry data plane's digests, so a pull by digest agrees with what the registry lists.
    return resolve_reference(world, login_server, ref.repository, ref.digest or ref.tag or "latest") is not None


def _can_pull(world: World, registry: dict[str, Any], ref: ImageRef, cred: dict[str, Any] | None) -> bool:
    reg_props = registry.get("properties", {})
    restricted = _restricted(reg_props)
    if cred is not None and cred.get("identity"):
        # VNet-injected and Windows groups pull like any other with a user-assigned identity: the ACI
        # article (MicrosoftDocs/azure-compute-docs, articles/container-instances/
        # using-azure-container-registry-mi.md, ms.date 2026-07-25) limits only system-assigned pulls,
        # "regardless of the container group operating system", and the registry's private endpoint
        # in the ACI-delegated subnet; the 2023 guide's VNet and Windows limitations are gone.
        bypass = str(reg_props.get("networkRuleBypassOptions", "AzureServices"))
        if restricted and bypass.lower() != "azureservices":
            return False
        identity = world.get(str(cred["identity"]))
        principal = str((identity or {}).get("properties", {}).get("principalId") or "")
        if not principal or not _may_pull(world, principal, registry, ref.repository):
            return False
    elif cred is not None:
        # Only a managed identity lets ACI through a restricted registry as a trusted service.
        admin_ok = (bool(reg_props.get("adminUserEnabled"))
                    and str(cred.get("username", "")).lower() == str(registry.get("name", "")).lower()
                    and bool(cred.get("password")))
        if restricted or not admin_ok:
            return False
    elif restricted or not reg_props.get("anonymousPullEnabled"):
        return False
    return _image_exists(world, str(reg_props.get("loginServer", "")), ref)


def _pull_fault(world: World, image: str) -> bool:
    """A scenario fault ``{"match": "PULL <image pattern>", "pull": "fail", "times": n}``: the pull of a
    matching image fails (``InaccessibleImage``) though nothing is wrong, as Azure reports transient
    pull failures that clear without a change (CONTRACT.md §1, UNKNOWN)."""
    for i, fault in enumerate(world.behaviour.get("faults") or []):
        method, _, pattern = str(fault.get("match", "")).strip().partition(" ")
        if ("pull" in fault and method.upper() == "PULL"
                and fnmatch.fnmatch(image.lower(), pattern.strip().lower()) and world.use_fault(i, fault)):
            return True
    return False


def _reaches(world: World, props: dict[str, Any], registry: dict[str, Any]) -> bool:
    """A VNet-injected group reaches a network-restricted registry only through a private endpoint
    in its network or a peered one, with the ``privatelink.azurecr.io`` zone linked (sandbox/network.py)."""
    subnet_ids = [str(s.get("id", "")) if isinstance(s, dict) else str(s) for s in props.get("subnetIds") or []]
    if not subnet_ids or not _restricted(registry.get("properties", {})):
        return True
    return network.private_path(world, subnet_ids, str(registry["id"]))


def _pull_error(world: World, name: str, props: dict[str, Any], image: str) -> dict[str, Any] | None:
    if _pull_fault(world, image):
        return _inaccessible(name, image)
    ref = parse_image(image)
    if ref.host is None:
        return None  # Docker Hub
    registry = world.registry_by_login_server(ref.host)
    if registry is None and not _is_acr_host(ref.host):
        return None  # a public registry outside the sandbox (docker.io, mcr.microsoft.com, ...)
    creds = props.get("imageRegistryCredentials") or []
    cred = next((c for c in creds if str(c.get("server", "")).lower() == ref.host), None)
    if registry is not None:
        # a network change the registry's owner just made may not have reached ACI's pull path yet
        registry = as_aci_pulls_see_it(world, registry)
    if registry is not None and _can_pull(world, registry, ref, cred) and _reaches(world, props, registry):
        return None
    return _inaccessible(name, image)


def _inaccessible(name: str, image: str) -> dict[str, Any]:
    return _error("InaccessibleImage",
                  f"The image '{image}' in container group '{name}' is not accessible. "
                  "Please check the image and registry credential.")


def _images(props: dict[str, Any]) -> list[str]:
    items = list(props.get("initContainers") or []) + list(props.get("containers") or [])
    return [str(c.get("properties", {}).get("image", "")) for c in items if isinstance(c, dict)]


def _pull_errors(world: World, name: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The first image of a checked definition that the group could not pull, as ACI's error."""
    props = body["properties"]
    with world.lock:
        for image in _images(props):
            error = _pull_error(world, name, props, image)
            if error:
                return error
    return None


def _validate(world: World, name: str, body: Any, api_version: str, raw: bytes | None = None) -> dict[str, Any] | None:
    return _check_definition(world, name, body, api_version, raw) or _pull_errors(world, name, body)


def pulls_async(world: World) -> bool:
    """``behaviour.pullFailureMode: async``: ACI accepts a valid group and pulls afterwards, so a pull
    failure ends the accepted create as Failed instead of answering the PUT with 400."""
    return str(world.behaviour.get("pullFailureMode") or "sync").lower() == "async"


def validate(world: World, resource_id: str, body: dict[str, Any], api_version: str) -> dict[str, Any] | None:
    """The ARM error object (``{"code", "message"}``) ACI answers for this PUT, or None if it succeeds."""
    return _validate(world, _name_of(resource_id), body, api_version)


def create_in_deployment(world: World, resource_id: str, body: dict[str, Any],
                         api_version: str) -> dict[str, Any] | None:
    """A template deployment's write of the group: :func:`validate`, then :func:`provision`; the
    ARM error, or None. In async pull mode a pull failure also leaves the group ``Failed`` with its
    events, as the accepted create would."""
    error = validate(world, resource_id, body, api_version)
    if error is None:
        provision(world, resource_id, body, api_version)
    elif pulls_async(world) and _check_definition(world, _name_of(resource_id), body, api_version, None) is None:
        with world.lock:
            _fail_pull(world, resource_id, body)
    return error


# --- stored shape -------------------------------------------------------------------------


def _name_of(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _stable_guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(p.lower() for p in parts)))


def _identity(world: World, resource_id: str, requested: Any, previous: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(requested, dict):
        return None
    kind = str(requested.get("type") or "None")
    out: dict[str, Any] = {"type": kind}
    if "systemassigned" in kind.replace(" ", "").lower():
        prev = (previous or {}).get("identity") or {}
        out["principalId"] = prev.get("principalId") or _stable_guid(resource_id, "system-principal")
        out["tenantId"] = world.tenant_id
    assigned = requested.get("userAssignedIdentities") or {}
    if assigned:
        out["userAssignedIdentities"] = {}
        for key in assigned:
            found = world.get(str(key)) or {}
            props = found.get("properties", {})
            out["userAssignedIdentities"][key] = {"principalId": props.get("principalId"),
                                                  "clientId": props.get("clientId")}
    return out


# The properties the 2023-05-01 ContainerGroup, Container and InitContainerDefinition define
# (Azure/azure-rest-api-specs, specification/containerinstance/resource-manager/
# Microsoft.ContainerInstance/stable/2023-05-01/containerInstance.json). The RP stores and returns
# only these: a response is the resource as GET returns it (the ARM RPC, put-resource), so a
# property the api-version does not define is not echoed back.
_GROUP_PROPERTIES = frozenset((
    "provisioningState", "containers", "imageRegistryCredentials", "restartPolicy", "ipAddress", "osType",
    "volumes", "instanceView", "diagnostics", "subnetIds", "dnsConfig", "sku", "encryptionProperties",
    "initContainers", "extensions", "confidentialComputeProperties", "priority"))
_CONTAINER_PROPERTIES = frozenset((
    "image", "command", "ports", "environmentVariables", "instanceView", "resources", "volumeMounts",
    "livenessProbe", "readinessProbe", "securityContext"))
_INIT_CONTAINER_PROPERTIES = frozenset((
    "image", "command", "environmentVariables", "instanceView", "volumeMounts", "securityContext"))
_CREDENTIAL_PROPERTIES = frozenset(("server", "username", "password", "identity", "identityUrl"))
_SECURITY_CONTEXT_PROPERTIES = frozenset((
    "privileged", "allowPrivilegeEscalation", "capabilities", "runAsGroup", "runAsUser", "seccompProfile"))


def _only(value: Any, known: frozenset[str]) -> Any:
    return {k: v for k, v in value.items() if k in known} if isinstance(value, dict) else value


def _container_only(container: Any, known: frozenset[str]) -> Any:
    if not isinstance(container, dict) or not isinstance(container.get("properties"), dict):
        return _only(container, frozenset(("name", "properties")))
    cprops = _only(container["properties"], known)
    if "securityContext" in cprops:
        cprops["securityContext"] = _only(cprops["securityContext"], _SECURITY_CONTEXT_PROPERTIES)
    return {**_only(container, frozenset(("name",))), "properties": cprops}


def _defined_only(props: dict[str, Any]) -> dict[str, Any]:
    """``props`` (a group's ``properties``) without the properties the spec does not define."""
    out = {k: v for k, v in props.items() if k in _GROUP_PROPERTIES}
    for key, known in (("containers", _CONTAINER_PROPERTIES), ("initContainers", _INIT_CONTAINER_PROPERTIES)):
        containers = out.get(key)
        if isinstance(containers, list):
            out[key] = [_container_only(c, known) for c in containers]
    credentials = out.get("imageRegistryCredentials")
    if isinstance(credentials, list):
        out["imageRegistryCredentials"] = [_only(c, _CREDENTIAL_PROPERTIES) for c in credentials]
    return out


def _strip_secrets(props: dict[str, Any]) -> None:
    """Drop, in place, the write-only secrets ARM never returns (passwords, keys, secure values)."""
    for cred in props.get("imageRegistryCredentials") or []:
        if isinstance(cred, dict):
            cred.pop("password", None)
    for volume in props.get("volumes") or []:
        if isinstance(volume, dict):
            volume.pop("secret", None)
            if isinstance(volume.get("azureFile"), dict):
                volume["azureFile"].pop("storageAccountKey", None)
    log_analytics = (props.get("diagnostics") or {}).get("logAnalytics")
    if isinstance(log_analytics, dict):
        log_analytics.pop("workspaceKey", None)
    for container in list(props.get("containers") or []) + list(props.get("initContainers") or []):
        if isinstance(container, dict):
            for var in (container.get("properties") or {}).get("environmentVariables") or []:
                if isinstance(var, dict):
                    var.pop("secureValue", None)


def _event(name: str, message: str, ts: float) -> dict[str, Any]:
    return {"count": 1, "firstTimestamp": iso(ts), "lastTimestamp": iso(ts), "message": message,
            "name": name, "type": "Normal"}


def _running_view(image: str, ts: float, restart_count: int = 0) -> dict[str, Any]:
    return {
        "restartCount": restart_count,
        "currentState": {"state": "Running", "startTime": iso(ts), "detailStatus": ""},
        "events": [
            _event("Pulling", f'pulling image "{image}"', ts),
            _event("Pulled", f'Successfully pulled image "{image}"', ts),
            _event("Created", "Created container", ts),
            _event("Started", "Started container", ts),
        ],
    }


def _failed_pull_view(image: str, ts: float) -> dict[str, Any]:
    """A container whose image ACI could not pull: it retried, then failed the deployment, and the
    instance view shows ``Pulling``, ``Failed`` (Warning, "Failed to pull image …") and ``BackOff``
    (MicrosoftDocs/azure-compute-docs, articles/container-instances/container-instances-troubleshooting.md)."""
    failed = _event("Failed", f'Failed to pull image "{image}": the registry refused the pull', ts)
    failed["type"] = "Warning"
    return {
        "restartCount": 0,
        "currentState": {"state": "Waiting", "detailStatus": "ErrImagePull"},
        "events": [_event("Pulling", f'pulling image "{image}"', ts), failed,
                   _event("BackOff", f'Back-off pulling image "{image}"', ts)],
    }


def _fail_pull(world: World, resource_id: str, body: dict[str, Any]) -> None:
    """Store the accepted group as ACI leaves it when its pull fails: ``Failed``, with the events."""
    previous = world.get(resource_id)
    group = build_group(world, previous["id"] if previous else resource_id, body, state="Failed", previous=previous)
    now = world.now()
    for container in group["properties"]["containers"]:
        cprops = container.setdefault("properties", {})
        cprops["instanceView"] = _failed_pull_view(str(cprops.get("image", "")), now)
    world.put(group)


def _container(definition: dict[str, Any], state: str, ts: float) -> dict[str, Any]:
    out = copy.deepcopy(definition)
    cprops = out.setdefault("properties", {})
    cprops.setdefault("command", [])
    cprops.setdefault("environmentVariables", [])
    cprops.setdefault("ports", [])
    if state == "Succeeded":
        cprops["instanceView"] = _running_view(str(cprops.get("image", "")), ts)
    else:
        cprops.pop("instanceView", None)
    return out


def _public_ip(resource_id: str) -> str:
    digest = hashlib.sha256(resource_id.lower().encode()).digest()
    return f"20.{digest[0]}.{digest[1]}.{max(digest[2], 1)}"


def build_group(world: World, resource_id: str, body: dict[str, Any], *, state: str,
                previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The group as ARM returns it: read-only fields filled, secrets dropped."""
    now = world.now()
    props = _defined_only(copy.deepcopy(body.get("properties") or {}))
    props.pop("instanceView", None)
    props["provisioningState"] = state
    props.setdefault("osType", "Linux")
    props.setdefault("sku", "Standard")
    props.setdefault("restartPolicy", "Always")
    props["containers"] = [_container(c, state, now) for c in props.get("containers") or []]
    props["initContainers"] = [_container(c, "Pending", now) for c in props.get("initContainers") or []]
    props.setdefault("imageRegistryCredentials", [])
    _strip_secrets(props)
    address = props.get("ipAddress")
    if isinstance(address, dict) and str(address.get("type", "")).lower() == "public":
        address.setdefault("ip", _public_ip(resource_id))
    props["instanceView"] = {"events": [], "state": "Running" if state == "Succeeded" else "Pending"}
    group: dict[str, Any] = {
        "id": resource_id,
        "name": _name_of(resource_id),
        "type": TYPE,
        "location": str(body.get("location", "")).replace(" ", "").lower(),
        "tags": dict(body.get("tags") or {}),
    }
    if body.get("zones"):
        group["zones"] = list(body["zones"])
    identity = _identity(world, resource_id, body.get("identity"), previous)
    if identity:
        group["identity"] = identity
    group["properties"] = props
    return group


def provision(world: World, resource_id: str, body: dict[str, Any], api_version: str) -> dict[str, Any]:
    """Store the group ``Succeeded`` (containers Running, instance view) and return a copy.

    Call only after :func:`validate` returned None. ``api_version`` is accepted for symmetry
    with :func:`validate`; the stored shape is 2023-05-01's.
    """
    with world.lock:
        previous = world.get(resource_id)
        stored_id = previous["id"] if previous else resource_id
        group = build_group(world, stored_id, body, state="Succeeded", previous=previous)
        world.put(group)
        _pending(world).pop(stored_id.lower(), None)
        return copy.deepcopy(group)


def _settle(world: World, resource_id: str | None = None) -> None:
    """Complete due PUT operations (one group, or all), as Azure would have by now."""
    pending = _pending(world)
    ids = [pending.get(resource_id.lower())] if resource_id else list(pending.values())
    for op_id in ids:
        if op_id:
            world.poll_operation(op_id)


def _as_seen(world: World, group: dict[str, Any]) -> dict[str, Any]:
    """The group as a reader sees it now: instance-view events only once ``eventsLagSeconds`` have
    passed since their timestamp (the troubleshooting guide, MicrosoftDocs/SupportArticles-docs
    support/azure/azure-container-instances/management/acr-image-pull-failures-managed-identity.md,
    ms.date 2026-09-09: events can appear late; if Started is missing, wait and look again)."""
    lag = world.knob("eventsLagSeconds", 0.0)
    if lag <= 0:
        return group
    seen = copy.deepcopy(group)
    cutoff = world.now() - lag
    for container in (seen.get("properties") or {}).get("containers") or []:
        view = (container.get("properties") or {}).get("instanceView")
        if isinstance(view, dict) and view.get("events"):
            view["events"] = [e for e in view["events"]
                              if parse_iso(str(e.get("lastTimestamp") or e.get("firstTimestamp"))) <= cutoff]
    return seen


# --- ARM routes ---------------------------------------------------------------------------


def _canonical_id(req: Request) -> str:
    sub = req.params["sub"].lower()
    group = req.world.resource_group(sub, req.params["rg"]) or {}
    rg = group.get("name", req.params["rg"])
    existing = req.world.get(resource_id_of(req))
    if existing:
        return str(existing["id"])
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{TYPE}/{req.params['name']}"


def _redacted(body: Any) -> Any:
    """The request body for the Activity Log, without the write-only secrets."""
    if not isinstance(body, dict):
        return body
    out = copy.deepcopy(body)
    if isinstance(out.get("properties"), dict):
        _strip_secrets(out["properties"])
    return out


ASSIGN_IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"


def _linked_authorization(req: Request, rid: str, body: Any) -> dict[str, str] | None:
    """ARM's linked check: putting a user-assigned identity on a resource needs ``assign/action`` on it."""
    world = req.world
    if not world.enforces(req.caller) or not isinstance(body, dict):
        return None
    identity = body.get("identity")
    assigned = identity.get("userAssignedIdentities") if isinstance(identity, dict) else None
    denied = [str(i) for i in (assigned or {}) if not world.allows(req.caller or "", ASSIGN_IDENTITY, str(i))]
    if not denied:
        return None
    return {"code": "LinkedAuthorizationFailed",
            "message": f"The client '{req.caller}' with object id '{req.caller}' has permission to perform action "
                       f"'{WRITE}' on scope '{rid}'; however, it does not have permission to perform action(s) "
                       f"'{ASSIGN_IDENTITY}' on the linked scope(s) '{', '.join(denied)}' (respectively) or the "
                       "linked scope(s) are invalid."}


@route("PUT", _BASE + "/{name}", action=WRITE)
def put_group(req: Request) -> Response:
    require_resource_group(req)
    world = req.world
    rid = _canonical_id(req)
    existed = world.get(rid) is not None
    try:
        body = req.json()
    except ArmError as err:
        record_write(req, resource_id=rid, operation_name=WRITE, status_code=err.status,
                     error={"code": err.code, "message": err.message}, existed=existed)
        raise
    linked = _linked_authorization(req, rid, body)
    if linked:
        record_write(req, resource_id=rid, operation_name=WRITE, status_code=403, error=linked,
                     request_body=_redacted(body), existed=existed)
        raise ArmError(403, linked["code"], linked["message"])
    # in async mode ACI validates the definition now and pulls once the create is accepted
    later = pulls_async(world)
    error = _check_definition(world, req.params["name"], body, req.api_version, req.raw_body)
    if error is None and not later:
        error = _pull_errors(world, req.params["name"], body)
    if error:
        record_write(req, resource_id=rid, operation_name=WRITE, status_code=400, error=error,
                     request_body=_redacted(body), existed=existed)
        raise ArmError(400, error["code"], error["message"])
    status = 200 if existed else 201
    with world.lock:
        group = build_group(world, rid, body, state="Pending", previous=world.get(rid))
        world.put(group)
    log_started(req, resource_id=rid, operation_name=WRITE, request_body=_redacted(body))
    if later:
        # the request's own end: accepted as a long-running operation; the operation's end follows with
        # the same correlation id (an Administrative write records its start and its success or failure:
        # MicrosoftDocs/azure-docs, articles/azure-monitor/platform/activity-log-schema.md, whose
        # subStatus values include Created (201) and Accepted (202))
        world.log_activity(activity_record(req, resource_id=rid, operation_name=WRITE, status="Accepted",
                                           status_code=status))
    op_id: list[str] = []

    def complete() -> dict[str, Any] | None:
        with world.lock:
            current = _pending(world).get(rid.lower()) == op_id[0]
            if current and world.get(rid) is None:
                _pending(world).pop(rid.lower(), None)
                canceled = _error("Canceled", f"The container group '{req.params['name']}' was deleted while "
                                  "it was being created.")
                record_write(req, resource_id=rid, operation_name=WRITE, status_code=409, error=canceled,
                             started_logged=True, existed=existed)
                return canceled
            failure = _pull_errors(world, req.params["name"], body) if current and later else None
            if failure:
                _fail_pull(world, rid, body)
                _pending(world).pop(rid.lower(), None)
            elif current:  # a later write to the same group supersedes this one
                provision(world, rid, body, req.api_version)
        if failure:
            # ARM raises the write's event when its long-running operation ends: ResourceWriteFailure
            # here (the eventual outcome of an operation is what Resource*Success/Failure report:
            # Azure/azure-rest-api-specs issue #7023), with the error in the Activity Log's final record
            # (the final record's statusCode is not documented; the one ACI answers the same error with)
            record_write(req, resource_id=rid, operation_name=WRITE, status_code=400, error=failure,
                         started_logged=True, existed=existed)
            return failure
        record_write(req, resource_id=rid, operation_name=WRITE, status_code=status, started_logged=True,
                     existed=existed)
        return None

    op = world.start_operation(complete, delay=world.knob("provisioningSeconds", 0.2))
    op_id.append(op.id)
    with world.lock:
        _pending(world)[rid.lower()] = op.id
    return Response(status, group, req.async_operation(op.id, group["location"] or "global"))


@route("GET", _BASE + "/{name}", action=READ)
def get_group(req: Request) -> Response:
    require_resource_group(req)
    rid = resource_id_of(req)
    _settle(req.world, rid)
    found = req.world.get(rid)
    if found is None:
        raise not_found(rid)
    return Response(200, _as_seen(req.world, found))


@route("DELETE", _BASE + "/{name}", action=DELETE)
def delete_group(req: Request) -> Response:
    require_resource_group(req)
    world = req.world
    rid = resource_id_of(req)
    with world.lock:
        removed = world.delete(rid)
        _pending(world).pop(rid.lower(), None)
    if removed is not None:
        rid = removed["id"]
    record_write(req, resource_id=rid, operation_name=DELETE, status_code=200 if removed else 204,
                 existed=removed is not None, delete=True)
    if removed is None:
        return Response(204)
    return Response(200, removed)


def _listed(req: Request, scope: str) -> Response:
    _settle(req.world)
    items = [_as_seen(req.world, g) for g in req.world.of_type(TYPE, scope) if may_read(req, g["id"], READ)]
    return Response(200, page(items))


# Lists carry no route action: ARM answers them for any caller and filters what each may read.
@route("GET", _BASE)
def list_in_group(req: Request) -> Response:
    require_resource_group(req)
    return _listed(req, f"/subscriptions/{req.params['sub']}/resourceGroups/{req.params['rg']}")


@route("GET", "/subscriptions/{sub}/providers/Microsoft.ContainerInstance/containerGroups")
def list_in_subscription(req: Request) -> Response:
    return _listed(req, f"/subscriptions/{req.params['sub']}")


def _existing(req: Request) -> dict[str, Any]:
    require_resource_group(req)
    rid = resource_id_of(req).rsplit("/", 1)[0]
    _settle(req.world, rid)
    found = req.world.get(rid)
    if found is None:
        raise not_found(rid)
    return found


def _with_containers(req: Request, group: dict[str, Any], *, running: bool, restart: bool = False) -> None:
    now = req.world.now()
    updated = copy.deepcopy(group)
    props = updated["properties"]
    for container in props.get("containers") or []:
        cprops = container.setdefault("properties", {})
        view = cprops.get("instanceView") or {}
        if running:
            count = int(view.get("restartCount", 0)) + (1 if restart else 0)
            cprops["instanceView"] = _running_view(str(cprops.get("image", "")), now, count)
            if view.get("currentState"):
                cprops["instanceView"]["previousState"] = view["currentState"]
        else:
            previous = view.get("currentState") or {}
            view["currentState"] = {"state": "Terminated", "startTime": previous.get("startTime", iso(now)),
                                    "finishTime": iso(now), "exitCode": 0, "detailStatus": "Completed"}
            view["previousState"] = previous
            view.setdefault("events", []).append(_event("Killing", "Killing container", now))
            cprops["instanceView"] = view
    props["instanceView"] = {"events": [], "state": "Running" if running else "Stopped"}
    req.world.put(updated)


@route("POST", _BASE + "/{name}/restart", action=f"{TYPE}/restart/action")
def restart_group(req: Request) -> Response:
    with req.world.lock:
        _with_containers(req, _existing(req), running=True, restart=True)
    return Response(204)


@route("POST", _BASE + "/{name}/stop", action=f"{TYPE}/stop/action")
def stop_group(req: Request) -> Response:
    with req.world.lock:
        _with_containers(req, _existing(req), running=False)
    return Response(204)


@route("POST", _BASE + "/{name}/start", action=f"{TYPE}/start/action")
def start_group(req: Request) -> Response:
    with req.world.lock:
        _with_containers(req, _existing(req), running=True)
    return Response(204)


__all__ = ["ImageRef", "build_group", "create_in_deployment", "parse_image", "provision", "pulls_async", "validate"]
