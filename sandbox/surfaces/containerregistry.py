"""Container registries, management plane (``azure-mgmt-containerregistry``, api-version 2025-11-01).

- GET, list by resource group and by subscription (the remediator sees what it may read).
- PUT (create or replace) and PATCH (update) as ACR runs them: ``201`` with ``Azure-AsyncOperation``
  and ``provisioningState`` ``Creating``/``Updating``; the operation ends after
  ``behaviour.registryWriteSeconds`` (default 0), and only then is the write logged as ended and
  its Event Grid event raised. The new settings are stored at once, as ARM shows them during an
  update.
- A PATCH that changes ``networkRuleBypassOptions``, ``publicNetworkAccess`` or ``networkRuleSet``
  reaches ACI's image pulls only after ``behaviour.networkPropagationSeconds`` (default 0):
  :func:`as_aci_pulls_see_it` gives ACI the settings in force that long ago, while GET shows the
  new ones at once, as ARM does.
- GET ``.../privateEndpointConnections`` (list and one) from ``properties.privateEndpointConnections``.

Scenario registries may be sparse: :func:`registry_view` fills what ARM always returns
(``creationDate``, ``policies``, ``encryption``...) without overwriting what the scenario gives.
The data plane (``registry_data``) reads the effective settings through the same function.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

from .. import network
from ..arm import log_started, not_found, page, record_write, require_resource_group, resource_id_of
from ..server import ArmError, Request, Response, may_read, route
from ..world import World, iso

TYPE = "Microsoft.ContainerRegistry/registries"
READ = "Microsoft.ContainerRegistry/registries/read"
WRITE = "Microsoft.ContainerRegistry/registries/write"
PEC_READ = "Microsoft.ContainerRegistry/registries/privateEndpointConnections/read"
_BASE = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries"

# What a registry created before the scenario started says it was created on.
SCENARIO_CREATION_DATE = "2024-01-15T09:30:00.0000000Z"

_ENUMS: dict[str, tuple[str, ...]] = {
    "publicNetworkAccess": ("Enabled", "Disabled"),
    "networkRuleBypassOptions": ("AzureServices", "None"),
    "roleAssignmentMode": ("AbacRepositoryPermissions", "LegacyRegistryPermissions"),
    "zoneRedundancy": ("Enabled", "Disabled"),
}
_BOOLS = ("adminUserEnabled", "anonymousPullEnabled", "dataEndpointEnabled", "networkRuleBypassAllowedForTasks")
_SKUS = ("Classic", "Basic", "Standard", "Premium")
# Properties a PATCH may change (RegistryPropertiesUpdateParameters); PUT also takes zoneRedundancy.
_UPDATABLE = ("adminUserEnabled", "networkRuleSet", "policies", "encryption", "dataEndpointEnabled",
              "publicNetworkAccess", "networkRuleBypassOptions", "networkRuleBypassAllowedForTasks",
              "anonymousPullEnabled", "roleAssignmentMode")
_CREATABLE = (*_UPDATABLE, "zoneRedundancy")


def _default_properties(resource: dict[str, Any]) -> dict[str, Any]:
    name = str(resource.get("name") or resource["id"].rstrip("/").rsplit("/", 1)[-1])
    return {
        "loginServer": f"{name.lower()}.azurecr.io",
        "creationDate": SCENARIO_CREATION_DATE,
        "provisioningState": "Succeeded",
        "adminUserEnabled": False,
        "networkRuleSet": {"defaultAction": "Allow", "ipRules": []},
        "policies": {
            "quarantinePolicy": {"status": "disabled"},
            "trustPolicy": {"type": "Notary", "status": "disabled"},
            "retentionPolicy": {"days": 7, "lastUpdatedTime": "2024-01-15T09:30:00.0000000+00:00",
                                "status": "disabled"},
            "exportPolicy": {"status": "enabled"},
            "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
        },
        "encryption": {"status": "disabled"},
        "status": None,
        "dataEndpointEnabled": False,
        "dataEndpointHostNames": [],
        "privateEndpointConnections": [],
        "publicNetworkAccess": "Enabled",
        "networkRuleBypassOptions": "AzureServices",
        "networkRuleBypassAllowedForTasks": False,
        "zoneRedundancy": "Disabled",
        "anonymousPullEnabled": False,
        "roleAssignmentMode": "LegacyRegistryPermissions",
    }


def _fill(given: Any, defaults: Any) -> Any:
    """``given`` with missing keys taken from ``defaults``, recursively for objects."""
    if not isinstance(given, dict) or not isinstance(defaults, dict):
        return given
    out = {k: _fill(given[k], v) if k in given else copy.deepcopy(v) for k, v in defaults.items()}
    out.update({k: v for k, v in given.items() if k not in defaults})
    return out


def registry_view(resource: dict[str, Any]) -> dict[str, Any]:
    """The registry as ARM returns it: the stored JSON with ARM's defaults under it."""
    res = copy.deepcopy(resource)
    name = str(res.get("name") or res["id"].rstrip("/").rsplit("/", 1)[-1])
    sku = res.get("sku") or {"name": "Premium"}
    out: dict[str, Any] = {
        "id": res["id"],
        "name": name,
        "type": res.get("type") or TYPE,
        "location": res.get("location") or "eastus",
        "tags": res.get("tags") or {},
        "sku": {"name": sku.get("name", "Premium"), "tier": sku.get("tier") or sku.get("name", "Premium")},
    }
    for key in ("identity", "systemData"):
        if res.get(key) is not None:
            out[key] = res[key]
    props = _fill(res.get("properties") or {}, _default_properties(res))
    if props.get("dataEndpointEnabled") and not props.get("dataEndpointHostNames"):
        prefix = str(props["loginServer"]).split(".", 1)[0]
        props["dataEndpointHostNames"] = [f"{prefix}.{out['location'].replace(' ', '').lower()}.data.azurecr.io"]
    props["privateEndpointConnections"] = [
        _connection_view(out["id"], c, i) for i, c in enumerate(props.get("privateEndpointConnections") or [])]
    out["properties"] = props
    out.update({k: v for k, v in res.items() if k not in out and k != "properties"})
    return out


def _connection_view(registry_id: str, conn: dict[str, Any], index: int) -> dict[str, Any]:
    conn = copy.deepcopy(conn)
    name = conn.get("name") or str(conn.get("id") or "").rstrip("/").rsplit("/", 1)[-1] or f"connection-{index}"
    props = conn.get("properties") or {}
    props.setdefault("provisioningState", "Succeeded")
    props.setdefault("privateLinkServiceConnectionState",
                     {"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"})
    return {"id": conn.get("id") or f"{registry_id}/privateEndpointConnections/{name}", "name": name,
            "type": conn.get("type") or f"{TYPE}/privateEndpointConnections", **{
                k: v for k, v in conn.items() if k not in ("id", "name", "type", "properties")},
            "properties": props}


# --- network settings as ACI pulls see them ----------------------------------------------------

_NETWORK_KEYS = ("publicNetworkAccess", "networkRuleBypassOptions", "networkRuleSet")
# Per world: registry id (lower) -> [(changed at, network settings from then on)], oldest first; the
# first entry, at -inf, is what the registry had before its first network PATCH.
_network_history: weakref.WeakKeyDictionary[World, dict[str, list[tuple[float, dict[str, Any]]]]] = \
    weakref.WeakKeyDictionary()


def _network_settings(resource: dict[str, Any]) -> dict[str, Any]:
    props = registry_view(resource)["properties"]
    return {key: copy.deepcopy(props.get(key)) for key in _NETWORK_KEYS}


def _note_network_change(world: World, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Remember a PATCH's network change so ACI pulls can keep the old settings while it propagates."""
    old, new = _network_settings(before), _network_settings(after)
    if old == new:
        return
    with world.lock:
        history = _network_history.setdefault(world, {}).setdefault(after["id"].lower(), [(float("-inf"), old)])
        history.append((world.now(), new))


def _forget_network_changes(world: World, resource_id: str) -> None:
    with world.lock:
        _network_history.setdefault(world, {}).pop(resource_id.lower(), None)


def as_aci_pulls_see_it(world: World, registry: dict[str, Any]) -> dict[str, Any]:
    """``registry`` (stored JSON or ARM view) with the network settings ACI's pulls see now.

    Those are the settings of ``behaviour.networkPropagationSeconds`` ago: a network PATCH newer
    than that has not reached the pull path yet. Everything else is the registry as given.
    """
    cutoff = world.now() - world.knob("networkPropagationSeconds", 0.0)
    with world.lock:
        history = list(_network_history.get(world, {}).get(str(registry["id"]).lower()) or [])
    if not history or history[-1][0] <= cutoff:
        return registry
    seen = next(settings for changed, settings in reversed(history) if changed <= cutoff)
    out = copy.deepcopy(registry)
    out.setdefault("properties", {}).update(copy.deepcopy(seen))
    return out


# --- long-running writes ----------------------------------------------------------------------

_pending: weakref.WeakKeyDictionary[World, dict[str, str]] = weakref.WeakKeyDictionary()


def _settle(world: World, resource_id: str) -> None:
    """Let time act on a pending create/update of this registry (ACR finishes it in the background)."""
    with world.lock:
        ops = _pending.setdefault(world, {})
        op_id = ops.get(resource_id.lower())
        if op_id is None:
            return
        op = world.poll_operation(op_id)
        if op is None or op.status != "InProgress":
            ops.pop(resource_id.lower(), None)


def current_registry(world: World, resource_id: str) -> dict[str, Any] | None:
    """The registry's ARM view now, or None; a due create/update is completed first."""
    _settle(world, resource_id)
    found = world.get(resource_id)
    if found is None:
        return None
    view = registry_view(found)
    listed = view["properties"]["privateEndpointConnections"]
    known = {str(((c.get("properties") or {}).get("privateEndpoint") or {}).get("id", "")).lower() for c in listed}
    # ACR lists a connection for every private endpoint that targets the registry
    listed += [c for c in network.registry_connections(world, view["id"])
               if c["properties"]["privateEndpoint"]["id"].lower() not in known]
    return view


def _start_write(req: Request, rid: str, body: Any, *, existed: bool) -> dict[str, str]:
    """Log the write as started and register its completion; returns the poller headers."""
    world = req.world
    log_started(req, resource_id=rid, operation_name=WRITE, request_body=body)

    def complete() -> dict[str, Any] | None:
        stored = world.get(rid)
        if stored is not None:
            stored.setdefault("properties", {})["provisioningState"] = "Succeeded"
        record_write(req, resource_id=rid, operation_name=WRITE, status_code=200 if existed else 201,
                     existed=existed, started_logged=True)
        return None

    op = world.start_operation(complete, delay=world.knob("registryWriteSeconds", 0.0))
    with world.lock:
        _pending.setdefault(world, {})[rid.lower()] = op.id
    stored = world.get(rid) or {}
    return req.async_operation(op.id, str(stored.get("location") or "global").replace(" ", "").lower())


def _invalid(path: str, value: Any, expected: str) -> ArmError:
    return ArmError(400, "InvalidRequestContent",
                    f"The request content was invalid and could not be deserialized: 'Error converting value "
                    f"{value!r} to type '{expected}'. Path '{path}'.'")


def _validate(body: Any, keys: tuple[str, ...], *, create: bool) -> None:
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent",
                       "The request content was invalid and could not be deserialized: 'the body must be an object'.")
    if create and not body.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    sku = body.get("sku")
    if create and not (isinstance(sku, dict) and sku.get("name")):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "
                       "'Required property 'name' not found in JSON. Path 'sku'.'")
    if sku is not None and (not isinstance(sku, dict)
                            or str(sku.get("name", "")).lower() not in [s.lower() for s in _SKUS]):
        raise _invalid("sku.name", sku.get("name") if isinstance(sku, dict) else sku, "SkuName")
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())):
        raise _invalid("tags", tags, "Dictionary[String, String]")
    props = body.get("properties")
    if props is None:
        return
    if not isinstance(props, dict):
        raise _invalid("properties", props, "RegistryProperties")
    for key, allowed in _ENUMS.items():
        value = props.get(key)
        if key in keys and value is not None and str(value).lower() not in [a.lower() for a in allowed]:
            raise _invalid(f"properties.{key}", value, key[0].upper() + key[1:])
    for key in _BOOLS:
        if key in keys and props.get(key) is not None and not isinstance(props[key], bool):
            raise _invalid(f"properties.{key}", props[key], "Boolean")
    rules = props.get("networkRuleSet")
    if rules is not None:
        if not isinstance(rules, dict) or str(rules.get("defaultAction", "")).lower() not in ("allow", "deny"):
            raise _invalid("properties.networkRuleSet.defaultAction",
                           rules.get("defaultAction") if isinstance(rules, dict) else rules, "DefaultAction")
        for i, rule in enumerate(rules.get("ipRules") or []):
            if not isinstance(rule, dict) or not isinstance(rule.get("value"), str):
                raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                               f"deserialized: 'Required property 'value' not found in JSON. "
                               f"Path 'properties.networkRuleSet.ipRules[{i}]'.'")


def _canonical(key: str, value: Any) -> Any:
    """Enum values as ARM spells them back (the service accepts any casing)."""
    for allowed in _ENUMS.get(key, ()):
        if str(value).lower() == allowed.lower():
            return allowed
    return value


def _sku(sku: dict[str, Any]) -> dict[str, str]:
    name = next(s for s in _SKUS if s.lower() == str(sku["name"]).lower())
    return {"name": name, "tier": name}


def _network_rules(rules: dict[str, Any]) -> dict[str, Any]:
    action = "Deny" if str(rules.get("defaultAction")).lower() == "deny" else "Allow"
    ip_rules = [{"action": r.get("action") or "Allow", "value": r["value"]} for r in rules.get("ipRules") or []]
    return {"defaultAction": action, "ipRules": ip_rules}


def _apply_properties(target: dict[str, Any], given: dict[str, Any], keys: tuple[str, ...]) -> None:
    """PATCH merge: a given property replaces the stored one; policies merge per policy."""
    for key in keys:
        if given.get(key) is None:
            continue
        value = copy.deepcopy(given[key])
        if key == "networkRuleSet":
            target[key] = _network_rules(value)
        elif key == "policies" and isinstance(value, dict):
            merged = target.setdefault("policies", {})
            for policy, settings in value.items():
                if isinstance(settings, dict) and isinstance(merged.get(policy), dict):
                    merged[policy] = {**merged[policy], **settings}
                else:
                    merged[policy] = settings
        else:
            target[key] = _canonical(key, value)


def _fail(req: Request, rid: str, err: ArmError, body: Any, *, existed: bool) -> ArmError:
    """Record a rejected write as ARM does (Activity Log failure, ResourceWriteFailure event)."""
    record_write(req, resource_id=rid, operation_name=WRITE, status_code=err.status,
                 error={"code": err.code, "message": err.message}, request_body=body, existed=existed)
    return err


# --- routes -----------------------------------------------------------------------------------

@route("GET", _BASE + "/{name}", action=READ)
def get_registry(req: Request) -> Response:
    require_resource_group(req)
    found = current_registry(req.world, resource_id_of(req))
    if found is None:
        raise not_found(resource_id_of(req))
    return Response(200, found)


@route("GET", _BASE)
def list_in_group(req: Request) -> Response:
    """Registries in a resource group; the remediator gets those it may read."""
    require_resource_group(req)
    scope = f"/subscriptions/{req.params['sub']}/resourceGroups/{req.params['rg']}"
    return Response(200, page(_visible(req, scope)))


@route("GET", "/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/registries")
def list_in_subscription(req: Request) -> Response:
    """Registries in a subscription; the remediator gets those it may read."""
    return Response(200, page(_visible(req, f"/subscriptions/{req.params['sub']}")))


def _visible(req: Request, scope: str) -> list[dict[str, Any]]:
    out = []
    for reg in req.world.of_type(TYPE, scope):
        if may_read(req, reg["id"], READ):
            view = current_registry(req.world, reg["id"])
            if view is not None:
                out.append(view)
    return out


@route("PUT", _BASE + "/{name}", action=WRITE)
def create_registry(req: Request) -> Response:
    require_resource_group(req)
    world = req.world
    rid = f"/subscriptions/{req.params['sub'].lower()}/resourceGroups/{req.params['rg']}/providers/{TYPE}/" \
          f"{req.params['name']}"
    body = req.json()
    with world.lock:
        existing = world.get(rid)
        try:
            _validate(body, _CREATABLE, create=True)
            _check_create(world, rid, body, existing)
        except ArmError as err:
            raise _fail(req, rid, err, body, existed=existing is not None) from None
        props: dict[str, Any] = {}
        if existing is not None:
            old = registry_view(existing)["properties"]
            props = {k: old[k] for k in ("loginServer", "creationDate", "privateEndpointConnections")}
            props["provisioningState"] = "Updating"
        else:
            props = {"loginServer": f"{req.params['name'].lower()}.azurecr.io", "creationDate": iso(world.now()),
                     "provisioningState": "Creating"}
        _apply_properties(props, body.get("properties") or {}, _CREATABLE)
        resource: dict[str, Any] = {"id": existing["id"] if existing else rid, "name": req.params["name"],
                                    "type": TYPE, "location": body["location"], "tags": body.get("tags") or {},
                                    "sku": _sku(body["sku"]), "properties": props}
        if body.get("identity") is not None:
            resource["identity"] = copy.deepcopy(body["identity"])
        world.put(resource)
        # a PUT replaces the registry outright; only PATCHes are modelled as propagating
        _forget_network_changes(world, resource["id"])
    headers = _start_write(req, resource["id"], body, existed=existing is not None)
    return Response(200 if existing else 201, registry_view(resource), headers)


def _check_create(world: World, rid: str, body: dict[str, Any], existing: dict[str, Any] | None) -> None:
    name = rid.rsplit("/", 1)[-1]
    if existing is not None:
        old_loc = str(existing.get("location", "")).replace(" ", "").lower()
        if old_loc and old_loc != str(body["location"]).replace(" ", "").lower():
            raise ArmError(400, "InvalidResourceLocation",
                           f"The resource '{name}' already exists in location '{existing.get('location')}' in "
                           f"resource group '{rid.split('/')[4]}'. A resource with the same name cannot be created "
                           f"in location '{body['location']}'. Please select a new resource name.")
        return
    login_server = f"{name.lower()}.azurecr.io"
    if world.registry_by_login_server(login_server) is not None:
        raise ArmError(409, "AlreadyInUse",
                       f"The registry DNS name {login_server} is already in use. You can check if the name is "
                       "already claimed using following API: "
                       "https://docs.microsoft.com/en-us/rest/api/containerregistry/registries/check-name-availability")


@route("PATCH", _BASE + "/{name}", action=WRITE)
def update_registry(req: Request) -> Response:
    """``registries.begin_update``: merge the given settings, answer 201 and an async operation."""
    require_resource_group(req)
    world = req.world
    rid = resource_id_of(req)
    body = req.json()
    _settle(world, rid)
    with world.lock:
        existing = world.get(rid)
        if existing is None:
            raise not_found(rid)
        try:
            _validate(body, _UPDATABLE, create=False)
        except ArmError as err:
            raise _fail(req, existing["id"], err, body, existed=True) from None
        updated = copy.deepcopy(existing)
        if body.get("tags") is not None:
            updated["tags"] = dict(body["tags"])
        if body.get("sku") is not None:
            updated["sku"] = _sku(body["sku"])
        if body.get("identity") is not None:
            updated["identity"] = copy.deepcopy(body["identity"])
        props = updated.setdefault("properties", {})
        _apply_properties(props, body.get("properties") or {}, _UPDATABLE)
        props["provisioningState"] = "Updating"
        _note_network_change(world, existing, updated)
        world.put(updated)
    headers = _start_write(req, existing["id"], body, existed=True)
    return Response(201, registry_view(updated), headers)


@route("GET", _BASE + "/{name}/privateEndpointConnections", action=PEC_READ)
def list_private_endpoint_connections(req: Request) -> Response:
    require_resource_group(req)
    rid = resource_id_of(req).rsplit("/", 1)[0]
    found = current_registry(req.world, rid)
    if found is None:
        raise not_found(rid)
    return Response(200, page(found["properties"]["privateEndpointConnections"]))


@route("GET", _BASE + "/{name}/privateEndpointConnections/{connection}", action=PEC_READ)
def get_private_endpoint_connection(req: Request) -> Response:
    require_resource_group(req)
    rid = resource_id_of(req).rsplit("/", 2)[0]
    found = current_registry(req.world, rid)
    if found is None:
        raise not_found(rid)
    for conn in found["properties"]["privateEndpointConnections"]:
        if conn["name"].lower() == req.params["connection"].lower():
            return Response(200, conn)
    raise not_found(resource_id_of(req))
