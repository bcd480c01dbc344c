"""The sandbox's HTTPS front door: routing, ARM authentication and authorization, faults.

Surfaces (``sandbox/surfaces/*.py``) register handlers with :func:`route`. A handler gets a
:class:`Request` and returns a :class:`Response` or raises :class:`ArmError`; this module does
what ARM does around every call: api-version check, bearer token, RBAC for the remediator and the
deployer (where the scenario names them), fault injection, latency, and the request log.
"""

from __future__ import annotations

import fnmatch
import json
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import blockers, rbac
from .tokens import parse_token
from .world import RequestRecord, World


class ArmError(Exception):
    """An error answered in ARM's shape: ``{"error": {"code", "message", ...}}``.

    ``flat`` answers ``{"code", "message"}`` instead, for the resource providers whose spec declares
    that shape (the Activity Log's ``ErrorResponse``).
    """

    def __init__(self, status: int, code: str, message: str, *, details: list[dict[str, Any]] | None = None,
                 target: str | None = None, headers: dict[str, str] | None = None, flat: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.target = target
        self.headers = headers or {}
        self.flat = flat

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.flat:
            return err
        if self.target:
            err["target"] = self.target
        if self.details:
            err["details"] = self.details
        return {"error": err}


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw_body: bytes
    params: dict[str, str]
    world: World
    base_url: str
    caller: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)
    correlation_id: str = ""

    def json(self) -> Any:
        if not self.raw_body:
            return None
        try:
            return json.loads(self.raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArmError(400, "InvalidRequestContent",
                           f"The request content was invalid and could not be deserialized: '{exc}'.") from None

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def async_operation(self, op_id: str, location: str = "global") -> dict[str, str]:
        """Headers that point a poller at the operation (``Azure-AsyncOperation`` as ARM sends)."""
        sub = self.params.get("sub") or self.path.split("/")[2]
        url = (f"{self.base_url}/subscriptions/{sub}/providers/Microsoft.Sandbox/locations/{location}"
               f"/operationStatuses/{op_id}?api-version=2023-01-01")
        # Whole seconds, as ARM sends (some SDKs parse it as an int). 0 lets a client poll at its own
        # polling_interval, which is how tests keep long-running operations fast.
        retry = int(self.world.knob("pollRetryAfterSeconds", 0))
        return {"Azure-AsyncOperation": url, "Retry-After": str(retry)}


Handler = Callable[[Request], Response]
Attributes = Callable[[Request], tuple[dict[str, Any], dict[str, Any]]]


@dataclass
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    action: str | None
    arm: bool
    attributes: Attributes | None
    scope: Callable[[Request], str] | None


ROUTES: list[Route] = []


def _compile(template: str) -> re.Pattern[str]:
    out = ""
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            if name.endswith("*"):
                out += f"(?P<{name[:-1]}>.*?)"
            else:
                out += f"(?P<{name}>[^/]+)"
        else:
            out += re.escape(piece)
    return re.compile("^" + out + "/?$", re.IGNORECASE)


def route(method: str, template: str, *, action: str | None = None, arm: bool = True,
          attributes: Attributes | None = None,
          scope: Callable[[Request], str] | None = None) -> Callable[[Handler], Handler]:
    """Register a handler for ``METHOD /path/{param}/...`` (``{name*}`` spans segments).

    ``action`` is the RBAC operation checked when the caller is the scenario's remediator or deployer,
    at ``scope(req)`` (default: the request path). ``attributes`` returns the request and
    resource attributes that conditions on the caller's assignments may test.
    """
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method.upper(), template, _compile(template), handler, action, arm, attributes, scope))
        return handler
    return register


# --- api-versions ------------------------------------------------------------------------------

# The api-versions ARM routes to each resource type the product calls: the folders published for it
# in Azure/azure-rest-api-specs (specification/<service>/resource-manager/<namespace>/{stable,preview}/)
# and packaged by the azure-mgmt-* clients. Types not listed here are not checked.
SUPPORTED_API_VERSIONS: dict[str, tuple[str, ...]] = {
    "microsoft.containerinstance/containergroups": (
        "2017-08-01-preview", "2017-10-01-preview", "2017-12-01-preview", "2018-02-01-preview", "2018-04-01",
        "2018-06-01", "2018-09-01", "2018-10-01", "2019-12-01", "2020-11-01", "2021-03-01", "2021-07-01",
        "2021-09-01", "2021-10-01", "2022-09-01", "2022-10-01-preview", "2023-05-01", "2024-05-01-preview",
        "2024-10-01-preview", "2024-11-01-preview", "2025-09-01", "2026-05-01"),
    "microsoft.containerregistry/registries": (
        "2017-10-01", "2019-05-01", "2021-09-01", "2022-12-01", "2023-07-01", "2025-04-01", "2025-11-01"),
    "microsoft.authorization/roleassignments": (
        "2015-07-01", "2018-09-01-preview", "2020-04-01-preview", "2020-10-01-preview", "2022-04-01"),
    "microsoft.authorization/roledefinitions": ("2015-07-01", "2018-01-01-preview", "2022-04-01",
                                                "2022-05-01-preview"),
    "microsoft.managedidentity/userassignedidentities": (
        "2018-11-30", "2021-09-30-preview", "2022-01-31-preview", "2023-01-31", "2024-11-30"),
    "microsoft.insights/eventtypes": ("2015-04-01", "2017-03-01-preview"),
}


def resource_type_of_path(path: str) -> tuple[str, str] | None:
    """``(namespace, type)`` of the resource a request path addresses: the first type after its
    last ``providers`` segment, so an extension resource is its own type."""
    parts = [p for p in path.split("/") if p]
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return None
    i = len(lowered) - 1 - lowered[::-1].index("providers")
    if len(parts) < i + 3:
        return None
    return parts[i + 1], parts[i + 2]


def check_api_version(req: Request) -> None:
    """ARM's answer to an api-version the resource type does not have: 400 ``NoRegisteredProviderFound``
    naming the supported versions (the message's shape as ARM returns it, e.g. Azure/azure-cli issue
    #28496; ARM also lists the supported locations, which the sandbox does not model)."""
    found = resource_type_of_path(req.path)
    if found is None:
        return
    supported = SUPPORTED_API_VERSIONS.get(f"{found[0]}/{found[1]}".lower())
    if not supported or req.api_version.lower() in supported:
        return
    existing = req.world.get(req.path.rstrip("/"))
    location = str((existing or {}).get("location") or "global")
    type_name = found[1]
    raise ArmError(400, "NoRegisteredProviderFound",
                   f"No registered resource provider found for location '{location}' and API version "
                   f"'{req.api_version}' for type '{type_name}'. The supported api-versions are "
                   f"'{', '.join(supported)}'.")


# --- async operations, shared by every long-running surface ---------------------------------

@route("GET", "/subscriptions/{sub}/providers/Microsoft.Sandbox/locations/{loc}/operationStatuses/{op}")
def _operation_status(req: Request) -> Response:
    op = req.world.poll_operation(req.params["op"])
    if op is None:
        raise ArmError(404, "OperationNotFound", f"The operation '{req.params['op']}' was not found.")
    body: dict[str, Any] = {"id": req.path, "name": op.id, "status": op.status}
    if op.error:
        body["error"] = op.error
    headers = {}
    if op.status == "InProgress":
        headers["Retry-After"] = str(int(req.world.knob("pollRetryAfterSeconds", 0)))
    return Response(200, body, headers)


# --- authorization ---------------------------------------------------------------------------

def authorization_failed(caller: str, action: str, scope: str, *, condition: bool = False) -> ArmError:
    verb = "does not have authorization or an ABAC condition not fulfilled" if condition \
        else "does not have authorization"
    return ArmError(403, "AuthorizationFailed",
                    f"The client '{caller}' with object id '{caller}' {verb} to perform action '{action}' "
                    f"over scope '{scope}' or the scope is invalid. If access was recently granted, "
                    "please refresh your credentials.")


def check_authorization(req: Request, r: Route) -> None:
    """ARM's RBAC check of the route's action, for the callers the scenario restricts
    (``World.enforces``: its remediator and its deployer); then, for every caller, the deny
    assignments (``sandbox/blockers.py``)."""
    if not r.action:
        return
    scope = r.scope(req) if r.scope else req.path
    if req.world.enforces(req.caller):
        _check_role_assignments(req, r, scope)
    denied = blockers.deny_refusal(req.world, req.caller or "", r.action, scope)
    if denied:
        raise ArmError(403, *denied)


def _check_role_assignments(req: Request, r: Route, scope: str) -> None:
    world, action = req.world, r.action or ""
    request_attrs, resource_attrs = r.attributes(req) if r.attributes else ({}, {})
    if world.allows(req.caller or "", action, scope, request_attributes=request_attrs,
                    resource_attributes=resource_attrs):
        return
    roles = world.role_definitions()
    has_condition = any(
        a["properties"].get("condition")
        and rbac.role_grants(roles.get(rbac.guid_of(a["properties"]["roleDefinitionId"]), {}), action, data=False)
        for a in rbac.effective_assignments(world.role_assignments(), req.caller or "", scope, groups=world.groups))
    raise authorization_failed(req.caller or "", action, scope, condition=has_condition)


def may_read(req: Request, resource_id: str, action: str) -> bool:
    """For list operations: whether the caller may see ``resource_id`` (those not restricted see all)."""
    world = req.world
    if not world.enforces(req.caller):
        return True
    return world.allows(req.caller or "", action, resource_id)


# --- faults ----------------------------------------------------------------------------------

def _match_fault(world: World, method: str, path: str) -> tuple[int, dict[str, Any]] | None:
    faults = world.behaviour.get("faults") or []
    for i, fault in enumerate(faults):
        if "deliver" in fault:
            continue  # Event Grid delivery faults, handled by the delivery code
        f_method, _, f_path = fault["match"].strip().partition(" ")
        if f_method != "*" and f_method.upper() != method:
            continue
        if not fnmatch.fnmatch(path.lower(), f_path.strip().lower()):
            continue
        if world.use_fault(i, fault):
            return i, fault
    return None


# --- HTTP ------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AzureSandbox/1.0"
    server: SandboxHTTPServer
    # the headers and the body leave in two writes: with Nagle's algorithm the second waits for the
    # client's delayed ACK (~40 ms), a delay ARM does not have
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence stdlib access logging; the request log records every call."""

    def _dispatch(self) -> None:
        world = self.server.world
        started = time.time()
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = {k.lower(): v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        method = self.command.upper()
        host, port = self.server.server_address[:2]
        base_url = f"https://{host!s}:{port}"
        req = Request(method, path, query, headers, raw, {}, world, base_url)
        req.correlation_id = headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        # who is calling, for the request log even when a fault answers before authentication
        bearer = headers.get("authorization", "")
        claims = parse_token(bearer[7:].strip()) if bearer.lower().startswith("bearer ") else None
        req.caller = str(claims["oid"]) if claims else None
        fault_name: str | None = None
        try:
            latency = world.knob("latencySeconds", 0.0)
            hit = _match_fault(world, method, path)
            if hit:
                fault = hit[1]
                fault_name = fault["match"]
                latency += float(fault.get("latency", 0))
            if latency:
                time.sleep(latency)
            if hit and hit[1].get("reset"):
                self._record(req, 0, started, fault_name)
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if hit and "status" in hit[1]:
                fault = hit[1]
                status = int(fault["status"])
                extra = {"Retry-After": str(fault["retryAfter"])} if "retryAfter" in fault else {}
                code = fault.get("code") or {429: "TooManyRequests", 500: "InternalServerError",
                                             503: "ServiceUnavailable", 502: "BadGateway",
                                             409: "Conflict"}.get(status, "InjectedFault")
                raise ArmError(status, code, f"Injected fault for '{fault['match']}'.", headers=extra)
            resp = self._route(req)
        except ArmError as err:
            resp = Response(err.status, err.body(), dict(err.headers))
        except Exception as exc:  # a sandbox bug must still answer, loudly, as a 500
            resp = Response(500, {"error": {"code": "SandboxInternalError", "message": repr(exc)}})
            self.server.errors.append(repr(exc))
        # logged before the answer leaves, so a client that has its answer also finds it in the log
        self._record(req, resp.status, started, fault_name)
        for observe in list(world.response_observers):
            observe(req, resp)
        self._send(req, resp)

    def _route(self, req: Request) -> Response:
        path_matched = False
        for r in ROUTES:
            m = r.regex.match(req.path)
            if not m:
                continue
            path_matched = True
            if r.method != req.method:
                continue
            req.params = {k: v for k, v in m.groupdict().items() if v is not None}
            if r.arm:
                self._authenticate(req)
                if not req.api_version:
                    raise ArmError(400, "MissingApiVersionParameter",
                                   "The api-version query parameter (?api-version=) is required for all requests.")
                check_api_version(req)
                sub = req.params.get("sub")
                if sub and not req.world.subscription_exists(sub):
                    raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
                check_authorization(req, r)
                locked = blockers.lock_refusal(req.world, req.method, req.path)
                if locked:
                    raise ArmError(409, *locked)
                disallowed = blockers.policy_refusal(req.world, req.method, req.path, req.json)
                if disallowed:
                    raise ArmError(403, *disallowed)
            return r.handler(req)
        if path_matched:
            raise ArmError(405, "MethodNotAllowed", f"The requested method '{req.method}' is not allowed.")
        raise ArmError(404, "InvalidResourceType" if "/providers/" in req.path else "NotFound",
                       f"The sandbox does not serve '{req.method} {req.path}'.")

    def _authenticate(self, req: Request) -> None:
        auth = req.header("authorization") or ""
        if not auth.lower().startswith("bearer "):
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                           headers={"WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", '
                                    'error="invalid_token", error_description="The authentication failed because '
                                    'of missing \'Authorization\' header."'})
        claims = parse_token(auth[7:].strip())
        if claims is None:
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.",
                           headers={"WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", '
                                    'error="invalid_token", error_description="The access token is invalid."'})
        req.caller = str(claims["oid"])
        req.claims = claims

    def _send(self, req: Request, resp: Response) -> None:
        if isinstance(resp.body, (bytes, bytearray)):
            payload = bytes(resp.body)
            ctype = resp.headers.pop("Content-Type", "application/octet-stream")
        elif resp.body is None:
            payload = b""
            ctype = "application/json; charset=utf-8"
        else:
            payload = json.dumps(resp.body).encode()
            ctype = "application/json; charset=utf-8"
        self.send_response(resp.status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-ms-correlation-request-id", req.correlation_id)
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _record(self, req: Request, status: int, started: float, fault: str | None) -> None:
        world = req.world
        with world.lock:
            world.request_log.append(RequestRecord(
                req.method, req.path, urlsplit(self.path).query, status, req.caller, started, time.time(), fault))

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _dispatch


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops connections when a client opens more at once (the
    # TLS handshakes run on the accepting thread), and the kernel retries them only after 1 s
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], world: World) -> None:
        super().__init__(address, _Handler)
        self.world = world
        self.errors: list[str] = []
