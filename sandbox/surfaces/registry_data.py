"""Container registries, data plane (``azure-containerregistry``), at ``/registries/<loginServer>``.

The endpoint ``https://127.0.0.1:PORT/registries/<loginServer>`` stands for ``https://<loginServer>``
and speaks ACR's token protocol, as the SDK's challenge policy expects:

1. a call without a registry token gets ``401`` and ``WWW-Authenticate: Bearer realm=".../oauth2/token",
   service="<loginServer>",scope="repository:<repo>:metadata_read"``;
2. ``POST /oauth2/exchange`` trades the caller's Entra token (its ``oid``) for a registry refresh token;
   the token's audience must be ACR's (``https://containerregistry.azure.net``) or, unless the
   registry disables authentication-as-ARM, Resource Manager's;
3. ``POST /oauth2/token`` trades the refresh token and the scope for an access token that carries only
   the actions the caller holds *now* (RBAC evaluated here, as ACR does when it issues a token);
4. the call is repeated with that access token.

Permissions follow the registry's ``roleAssignmentMode``: ``LegacyRegistryPermissions`` needs the
action ``Microsoft.ContainerRegistry/registries/pull/read`` (AcrPull, Reader, Owner...);
``AbacRepositoryPermissions`` needs the data actions ``.../repositories/metadata/read`` (metadata) or
``.../repositories/content/read`` (pull) with the repository name as ABAC attribute, and
``.../registries/catalog/read`` to list repositories. A token without the action gets ``401
UNAUTHORIZED``. A registry with public network access disabled, or default action Deny without an IP
rule for the caller, refuses everything with ``403 DENIED``: the caller is never a trusted service.

Images come from the scenario's ``images`` ({loginServer: {repository: [tags]}}); each tag's digest
is :func:`digest_of` the repository and tag, so any surface can compute the same one.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from .. import rbac
from ..server import Request, Response, route
from ..tokens import parse_token
from ..world import World
from .containerregistry import current_registry

CLIENT_IP = "127.0.0.1"  # the sandbox listens on loopback only, so every caller comes from here
PULL = "Microsoft.ContainerRegistry/registries/pull/read"
METADATA_READ = "Microsoft.ContainerRegistry/registries/repositories/metadata/read"
CONTENT_READ = "Microsoft.ContainerRegistry/registries/repositories/content/read"
CATALOG_READ = "Microsoft.ContainerRegistry/registries/catalog/read"
REFRESH_TOKEN_SECONDS = 3 * 3600
ACCESS_TOKEN_SECONDS = 75 * 60
UNNAMED_REMEDIATOR = "22222222-2222-2222-2222-222222222222"
"""The app's principal in a scenario that names no ``remediator``; such an app may do anything
(CONTRACT §3), on the registry data plane as on Resource Manager."""
IMAGE_TIME = "2024-01-15T09:45:00.0000000Z"  # when every scenario image was "pushed"
ACR_AUDIENCE = "https://containerregistry.azure.net"  # the audience Entra tokens for any registry carry
_AUTH_HELP = "authentication required, visit https://aka.ms/acr/authorization for more information."
_PREFIX = "/registries/{server}"


class RegistryError(Exception):
    """An error in the registry's own shape: ``{"errors": [{"code", "message", "detail"}]}``."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.response = Response(status, {"errors": [{"code": code, "message": message, "detail": detail}]},
                                 dict(headers or {}))


# --- shared helpers (also for surfaces that pull images) ---------------------------------------

def digest_of(repository: str, tag: str) -> str:
    """The stable fake digest of ``repository:tag``: ``sha256:`` + sha256 of that text."""
    return "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()


def repositories(world: World, login_server: str) -> dict[str, list[str]]:
    """Repository → tags held by the registry at ``login_server`` (empty when it has none)."""
    with world.lock:
        return {repo: list(tags) for repo, tags in world.images.get(login_server.lower(), {}).items()}


def find_repository(world: World, login_server: str, repository: str) -> tuple[str, list[str]] | None:
    """The stored name and tags of ``repository`` (names compare case-insensitively), or None."""
    for name, tags in repositories(world, login_server).items():
        if name.lower() == repository.lower():
            return name, tags
    return None


def resolve_reference(world: World, login_server: str, repository: str, reference: str) -> str | None:
    """The tag that ``reference`` (a tag or a ``sha256:`` digest) names in ``repository``, or None."""
    found = find_repository(world, login_server, repository)
    if found is None:
        return None
    name, tags = found
    for tag in tags:
        if reference == tag or reference.lower() == digest_of(name, tag):
            return tag
    return None


def network_allows(registry: dict[str, Any], client_ip: str = CLIENT_IP, *, trusted_service: bool = False) -> bool:
    """Whether the registry's network settings let ``client_ip`` (or a trusted Azure service) in.

    ``registry`` is the ARM view (``containerregistry.current_registry``), defaults included.
    """
    props = registry["properties"]
    restricted = str(props.get("publicNetworkAccess")).lower() == "disabled" \
        or str((props.get("networkRuleSet") or {}).get("defaultAction")).lower() == "deny"
    if not restricted:
        return True
    if trusted_service and str(props.get("networkRuleBypassOptions")).lower() == "azureservices":
        return True
    if str(props.get("publicNetworkAccess")).lower() == "disabled":
        return False
    return any(_ip_in(client_ip, rule.get("value", ""))
               for rule in (props.get("networkRuleSet") or {}).get("ipRules") or []
               if str(rule.get("action") or "Allow").lower() == "allow")


def _ip_in(ip: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def is_abac(registry: dict[str, Any]) -> bool:
    return str(registry["properties"].get("roleAssignmentMode")).lower() == "abacrepositorypermissions"


def allowed_actions(world: World, registry: dict[str, Any], principal_id: str, scope_type: str, name: str,
                    requested: list[str]) -> list[str]:
    """Which of the ``requested`` registry-token actions (``pull``, ``metadata_read``, ``*``) ACR grants."""
    out = []
    for action in requested:
        if scope_type == "repository" and action in ("pull", "metadata_read"):
            ok = can_read_repository(world, registry, principal_id, name, content=action == "pull")
        elif scope_type == "registry" and name == "catalog" and action == "*":
            ok = _permits(world, registry, principal_id, CATALOG_READ, {})
        else:
            ok = False  # push, delete and the rest are not served
        if ok:
            out.append(action)
    return out


def can_read_repository(world: World, registry: dict[str, Any], principal_id: str, repository: str, *,
                        content: bool = True) -> bool:
    """Whether ``principal_id`` may pull (``content``) or read metadata of ``repository``, per the mode.

    Only propagated role assignments count. ``registry`` is the ARM view (``current_registry``).
    """
    action = CONTENT_READ if content else METADATA_READ
    return _permits(world, registry, principal_id, action, rbac.repository_attributes(repository))


def _permits(world: World, registry: dict[str, Any], principal_id: str, abac_action: str,
             attributes: dict[str, Any]) -> bool:
    if is_abac(registry):
        return world.allows(principal_id, abac_action, registry["id"], data=True,
                            request_attributes=attributes, resource_attributes=attributes)
    return world.allows(principal_id, PULL, registry["id"])


# --- tokens -------------------------------------------------------------------------------------

def _encode(payload: dict[str, Any]) -> str:
    # Standard, padded base64: the SDK reads the exp claim with base64.b64decode, which would
    # garble the URL-safe alphabet.
    def seg(obj: dict[str, Any]) -> str:
        return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode("ascii")
    return f"{seg({'alg': 'none', 'typ': 'JWT'})}.{seg(payload)}."


def _issue(world: World, claims: dict[str, Any], ttl: int) -> str:
    now = int(world.now())
    payload = {"jti": str(uuid.uuid4()), "iss": "Azure Container Registry", "iat": now, "nbf": now,
               "exp": now + ttl, "version": "1.0", **claims}
    with world.lock:
        world.data_tokens[payload["jti"]] = payload
    return _encode(payload)


def _read_token(world: World, token: str, grant: str, login_server: str) -> dict[str, Any] | None:
    """The claims of a registry token this sandbox issued, still valid, for this registry; else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(claims, dict):
        return None
    with world.lock:
        issued = world.data_tokens.get(str(claims.get("jti")))
    if issued != claims or claims.get("grant_type") != grant:
        return None
    if str(claims.get("aud", "")).lower() != login_server.lower() or claims["exp"] <= world.now():
        return None
    return claims


def _parse_scopes(text: str) -> list[tuple[str, str, list[str]]]:
    out = []
    for scope in text.split():
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind and name:
            out.append((kind, name, [a for a in actions.split(",") if a]))
    return out


# --- plumbing -----------------------------------------------------------------------------------

def _registry_route(method: str, template: str) -> Callable[[Callable[..., Response]], Callable[[Request], Response]]:
    """A data-plane route: finds the registry, applies its network rules, answers errors in ACR's shape."""
    def register(handler: Callable[..., Response]) -> Callable[[Request], Response]:
        def serve(req: Request) -> Response:
            try:
                registry = _registry_for(req)
                return handler(req, registry)
            except RegistryError as err:
                return err.response
        route(method, _PREFIX + template, arm=False)(serve)
        serve.__name__ = serve.__qualname__ = handler.__name__
        serve.__doc__ = handler.__doc__
        return serve
    return register


def _registry_for(req: Request) -> dict[str, Any]:
    server = req.params["server"].lower()
    found = req.world.registry_by_login_server(server)
    registry = current_registry(req.world, found["id"]) if found is not None else None
    if registry is None:
        raise RegistryError(404, "NOT_FOUND", f"no registry answers at '{server}' (no such host)",
                            {"loginServer": server})
    if not network_allows(registry):
        raise RegistryError(403, "DENIED", f"client with IP '{CLIENT_IP}' is not allowed access. "
                            "Refer https://aka.ms/acr/firewall to grant access.")
    return registry


def _endpoint(req: Request, registry: dict[str, Any]) -> str:
    return f"{req.base_url}/registries/{registry['properties']['loginServer'].lower()}"


def _challenge(req: Request, registry: dict[str, Any], scope: str | None, message: str = _AUTH_HELP,
               detail: Any = None) -> RegistryError:
    login_server = registry["properties"]["loginServer"].lower()
    header = f'Bearer realm="{_endpoint(req, registry)}/oauth2/token",service="{login_server}"'
    if scope:
        header += f',scope="{scope}"'
    return RegistryError(401, "UNAUTHORIZED", message, detail, {"WWW-Authenticate": header})


def _authorize(req: Request, registry: dict[str, Any], kind: str, name: str, action: str) -> None:
    """Require a registry access token that carries ``action`` on ``kind:name``; else the 401 challenge."""
    scope = f"{kind}:{name}:{action}"
    detail = [{"Type": kind, "Name": name, "Action": action}]
    auth = req.header("authorization") or ""
    if not auth.lower().startswith("bearer "):
        raise _challenge(req, registry, scope, detail=detail)
    claims = _read_token(req.world, auth[7:].strip(), "access_token", registry["properties"]["loginServer"])
    if claims is None:
        raise _challenge(req, registry, scope, detail=detail)
    req.caller = str(claims.get("sub") or "") or None
    for grant in claims.get("access") or []:
        if grant.get("type") == kind and str(grant.get("name", "")).lower() == name.lower() \
                and action in grant.get("actions", []):
            return
    raise _challenge(req, registry, scope, detail=detail)


def _is_arm_audience(req: Request, audience: str) -> bool:
    """Resource Manager's audience in any cloud (``https://management.azure.com``,
    ``https://management.core.windows.net``, the sovereign ``management.…`` hosts), or the sandbox's own."""
    host = urlsplit(audience).hostname or ""
    return host.startswith("management.") or audience == req.base_url.lower()


def _check_audience(req: Request, registry: dict[str, Any], audience: str) -> None:
    """ACR accepts Entra tokens for its own audience always, and ARM-audience tokens only while the
    registry's ``policies.azureADAuthenticationAsArmPolicy.status`` is ``enabled`` (the default).

    The property and its ``enabled``/``disabled`` values are azure-rest-api-specs'
    ``AzureADAuthenticationAsArmPolicy`` (``specification/containerregistry/resource-manager/
    Microsoft.ContainerRegistry/Combine/stable/2025-11-01/combine.json``); the behaviour is the
    ACR article "Disable authentication as ARM template"
    (``container-registry-disable-authentication-as-arm.md``).
    """
    audience = audience.rstrip("/").lower()
    if audience == ACR_AUDIENCE:
        return
    if not _is_arm_audience(req, audience):
        raise RegistryError(401, "UNAUTHORIZED", f"the access token's audience '{audience}' is not accepted by "
                            "this registry")
    policy = (registry["properties"].get("policies") or {}).get("azureADAuthenticationAsArmPolicy") or {}
    if str(policy.get("status", "enabled")).lower() == "disabled":
        raise RegistryError(401, "UNAUTHORIZED", "tokens with the Azure Resource Manager audience are disabled "
                            "for this registry (azureADAuthenticationAsArmPolicy)")


def _form(req: Request) -> dict[str, str]:
    text = req.raw_body.decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _page(req: Request, names: list[str]) -> tuple[list[str], str | None]:
    """One page of ``names`` after ``last`` (``n`` at most), and whether more follow."""
    last = req.query.get("last")
    items = [n for n in names if last is None or n > last]
    try:
        size = int(req.query.get("n") or 0)
    except ValueError:
        size = 0
    if size > 0 and len(items) > size:
        return items[:size], items[size - 1]
    return items, None


def _link(path: str, last: str, n: str) -> dict[str, str]:
    return {"Link": f'<{path}?last={quote(last, safe="")}&n={n}>; rel="next"'}


# --- routes -------------------------------------------------------------------------------------

@_registry_route("GET", "/v2")
def check_v2(req: Request, registry: dict[str, Any]) -> Response:
    """Docker's version check: any valid registry token will do (ACR's challenge names no scope)."""
    auth = req.header("authorization") or ""
    if not auth.lower().startswith("bearer ") or _read_token(
            req.world, auth[7:].strip(), "access_token", registry["properties"]["loginServer"]) is None:
        raise _challenge(req, registry, None)
    return Response(200, {}, {"Docker-Distribution-API-Version": "registry/2.0"})


@_registry_route("POST", "/oauth2/exchange")
def exchange(req: Request, registry: dict[str, Any]) -> Response:
    """An Entra access token (``grant_type=access_token``) for a registry refresh token."""
    form = _form(req)
    login_server = registry["properties"]["loginServer"].lower()
    if form.get("grant_type") not in ("access_token", "access_token_refresh_token"):
        raise RegistryError(400, "UNSUPPORTED_GRANT_TYPE",
                            f"grant type '{form.get('grant_type')}' is not supported by this sandbox")
    if (form.get("service") or "").lower() != login_server:
        raise RegistryError(400, "BAD_REQUEST", f"service '{form.get('service')}' does not match '{login_server}'")
    claims = parse_token(form.get("access_token") or "")
    if claims is None or str(claims.get("tid", "")).lower() != req.world.tenant_id.lower():
        raise RegistryError(401, "UNAUTHORIZED", "the access token is invalid or from another tenant")
    _check_audience(req, registry, str(claims.get("aud") or ""))
    token = _issue(req.world, {"sub": str(claims["oid"]), "aud": login_server, "tenant": req.world.tenant_id,
                               "grant_type": "refresh_token", "permissions": {"actions": ["*"], "notActions": []}},
                   REFRESH_TOKEN_SECONDS)
    req.caller = str(claims["oid"])
    return Response(200, {"refresh_token": token})


@_registry_route("POST", "/oauth2/token")
def token(req: Request, registry: dict[str, Any]) -> Response:
    """A refresh token and scopes for an access token carrying the actions the caller may take now."""
    form = _form(req)
    world = req.world
    login_server = registry["properties"]["loginServer"].lower()
    grant = form.get("grant_type") or "refresh_token"
    if (form.get("service") or "").lower() != login_server:
        raise RegistryError(400, "BAD_REQUEST", f"service '{form.get('service')}' does not match '{login_server}'")
    scopes = _parse_scopes(form.get("scope") or "")
    access: list[dict[str, Any]] = []
    if grant == "password" and not form.get("refresh_token") and not form.get("password"):
        # anonymous: reading only, and only where anonymous pull is enabled
        subject = ""
        if registry["properties"].get("anonymousPullEnabled"):
            access = [{"type": k, "name": n, "actions": [a for a in acts if a in ("pull", "metadata_read", "*")]}
                      for k, n, acts in scopes if k == "repository" or (k, n) == ("registry", "catalog")]
    elif grant == "refresh_token":
        claims = _read_token(world, form.get("refresh_token") or "", "refresh_token", login_server)
        if claims is None:
            raise RegistryError(401, "UNAUTHORIZED", "the refresh token is invalid or expired")
        subject = str(claims["sub"])
        access = [{"type": k, "name": n, "actions": list(acts) if _unrestricted(world, subject)
                   else allowed_actions(world, registry, subject, k, n, acts)} for k, n, acts in scopes]
        req.caller = subject
    else:
        raise RegistryError(400, "UNSUPPORTED_GRANT_TYPE", f"grant type '{grant}' is not supported by this sandbox")
    issued = _issue(world, {"sub": subject, "aud": login_server, "tenant": world.tenant_id,
                            "grant_type": "access_token", "access": access}, ACCESS_TOKEN_SECONDS)
    return Response(200, {"access_token": issued})


def _unrestricted(world: World, principal_id: str) -> bool:
    """Whether ``principal_id`` is the app of a scenario that names no remediator."""
    return world.remediator is None and principal_id.lower() == UNNAMED_REMEDIATOR


def _repository_or_404(req: Request, registry: dict[str, Any]) -> tuple[str, list[str]]:
    found = find_repository(req.world, registry["properties"]["loginServer"], req.params["repo"])
    if found is None:
        raise RegistryError(404, "NAME_UNKNOWN", "repository name not known to registry",
                            {"name": req.params["repo"]})
    return found


def _flags() -> dict[str, bool]:
    return {"deleteEnabled": True, "writeEnabled": True, "readEnabled": True, "listEnabled": True}


def _tag(repo: str, tag: str) -> dict[str, Any]:
    return {"name": tag, "digest": digest_of(repo, tag), "createdTime": IMAGE_TIME, "lastUpdateTime": IMAGE_TIME,
            "signed": False, "changeableAttributes": _flags()}


@_registry_route("GET", "/acr/v1/_catalog")
def list_repositories(req: Request, registry: dict[str, Any]) -> Response:
    """``list_repository_names``: sorted, paged with ``n``/``last`` and a ``Link`` header."""
    _authorize(req, registry, "registry", "catalog", "*")
    names, more = _page(req, sorted(repositories(req.world, registry["properties"]["loginServer"])))
    headers = _link("/acr/v1/_catalog", more, req.query["n"]) if more else {}
    return Response(200, {"repositories": names}, headers)


@_registry_route("GET", "/acr/v1/{repo*}/_tags/{tag}")
def get_tag(req: Request, registry: dict[str, Any]) -> Response:
    """``get_tag_properties``."""
    _authorize(req, registry, "repository", req.params["repo"], "metadata_read")
    repo, tags = _repository_or_404(req, registry)
    if req.params["tag"] not in tags:
        raise RegistryError(404, "TAG_UNKNOWN", "the specified tag does not exist", {"tag": req.params["tag"]})
    return Response(200, {"registry": registry["properties"]["loginServer"], "imageName": repo,
                          "tag": _tag(repo, req.params["tag"])})


@_registry_route("GET", "/acr/v1/{repo*}/_tags")
def list_tags(req: Request, registry: dict[str, Any]) -> Response:
    """``list_tag_properties``: sorted by name, paged with ``n``/``last``."""
    _authorize(req, registry, "repository", req.params["repo"], "metadata_read")
    repo, tags = _repository_or_404(req, registry)
    digest = req.query.get("digest")
    names, more = _page(req, sorted(t for t in tags if not digest or digest_of(repo, t) == digest))
    headers = _link(f"/acr/v1/{repo}/_tags", more, req.query["n"]) if more else {}
    return Response(200, {"registry": registry["properties"]["loginServer"], "imageName": repo,
                          "tags": [_tag(repo, t) for t in names]}, headers)


def _manifest(repo: str, tag: str) -> dict[str, Any]:
    digest = digest_of(repo, tag)
    return {"digest": digest, "imageSize": 20_000_000 + int(digest[7:13], 16) % 50_000_000,
            "createdTime": IMAGE_TIME, "lastUpdateTime": IMAGE_TIME, "architecture": "amd64", "os": "linux",
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "configMediaType": "application/vnd.docker.container.image.v1+json", "tags": [tag],
            "changeableAttributes": {**_flags(), "quarantineState": "Passed"}}


@_registry_route("GET", "/acr/v1/{repo*}/_manifests/{digest}")
def get_manifest(req: Request, registry: dict[str, Any]) -> Response:
    """``get_manifest_properties`` (the SDK resolves a tag to its digest first)."""
    _authorize(req, registry, "repository", req.params["repo"], "metadata_read")
    repo, _ = _repository_or_404(req, registry)
    tag = resolve_reference(req.world, registry["properties"]["loginServer"], repo, req.params["digest"])
    if tag is None or not req.params["digest"].startswith("sha256:"):
        raise RegistryError(404, "MANIFEST_UNKNOWN", "manifest unknown", {"digest": req.params["digest"]})
    return Response(200, {"registry": registry["properties"]["loginServer"], "imageName": repo,
                          "manifest": _manifest(repo, tag)})


@_registry_route("GET", "/acr/v1/{repo*}/_manifests")
def list_manifests(req: Request, registry: dict[str, Any]) -> Response:
    """``list_manifest_properties``: one manifest per tag."""
    _authorize(req, registry, "repository", req.params["repo"], "metadata_read")
    repo, tags = _repository_or_404(req, registry)
    return Response(200, {"registry": registry["properties"]["loginServer"], "imageName": repo,
                          "manifests": [_manifest(repo, t) for t in sorted(tags)]})


@_registry_route("GET", "/acr/v1/{repo*}")
def get_repository(req: Request, registry: dict[str, Any]) -> Response:
    """``get_repository_properties``."""
    _authorize(req, registry, "repository", req.params["repo"], "metadata_read")
    repo, tags = _repository_or_404(req, registry)
    return Response(200, {"registry": registry["properties"]["loginServer"], "imageName": repo,
                          "createdTime": IMAGE_TIME, "lastUpdateTime": IMAGE_TIME, "manifestCount": len(tags),
                          "tagCount": len(tags), "changeableAttributes": {**_flags(), "teleportEnabled": False}})
