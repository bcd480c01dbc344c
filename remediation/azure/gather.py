"""Gather the context for a failure signal: every read the checks need, each made once.

Reads that do not depend on each other run concurrently. What cannot be read is not an error:
it becomes a note in the context, so a check that cannot decide stays silent and the report
says why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from ..definition import parse_definition
from ..errors import InputError
from ..images import is_acr
from ..model import (
    Context,
    ErrorInfo,
    FailureSignal,
    GroupDefinition,
    Identity,
    ImageRef,
    ImageStatus,
    Registry,
    RoleAssignment,
    RoleDefinition,
)
from ..permissions import scope_applies
from ..template import UnsupportedExpression, find_container_group
from .clients import AzureClients
from .errors import describe, is_transient

log = logging.getLogger(__name__)

REPOSITORY_READER_NAME = "Container Registry Repository Reader"
ACR_PULL_NAME = "AcrPull"
Snapshot = Callable[[str], dict[str, Any] | None]
"""Returns the last known-good definition of a container group, if one was recorded."""


@dataclass
class GatherOptions:
    subscriptions: tuple[str, ...] = ()
    """Subscriptions to search for registries, besides the failed group's own."""
    activity_log_wait_seconds: float = 120.0
    activity_log_poll_seconds: float = 5.0
    snapshot: Snapshot | None = None
    sleep: Callable[[float], None] = time.sleep
    max_workers: int = 8


@dataclass
class _ActivityFindings:
    error: ErrorInfo | None = None
    request_body: dict[str, Any] | None = None
    api_version: str | None = None
    notes: list[str] = field(default_factory=list)


def _odata_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_from_status_message(raw: Any) -> tuple[str, str] | None:
    """``properties.statusMessage`` is a JSON string (Activity Log) or an object (deployments)."""
    data = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    err = data.get("error", data)
    if not isinstance(err, dict) or "code" not in err:
        return None
    details = err.get("details") or []
    # A deployment wraps the real error; the innermost detail names the cause.
    if err.get("code") in ("DeploymentFailed", "ResourceDeploymentFailure") and details:
        inner = details[0]
        if isinstance(inner, dict) and "code" in inner:
            return str(inner["code"]), str(inner.get("message", ""))
    return str(err["code"]), str(err.get("message", ""))


class Gatherer:
    def __init__(self, clients: AzureClients, options: GatherOptions | None = None) -> None:
        self.clients = clients
        self.options = options or GatherOptions()
        self._pool = ThreadPoolExecutor(max_workers=self.options.max_workers, thread_name_prefix="gather")
        self._registry_lists: dict[str, list[Registry] | Exception] = {}
        self.transient_failures: list[str] = []
        """Reads that failed for reasons a retry may clear (throttling, 5xx, connection)."""

    def _failure(self, exc: Exception) -> str:
        """One line about a failed read; transient ones are remembered so the run can be retried."""
        text = describe(exc)
        if is_transient(exc):
            self.transient_failures.append(text)
        return text

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    # -- activity log -------------------------------------------------------------------------

    def _activity(self, signal: FailureSignal) -> _ActivityFindings:
        out = _ActivityFindings()
        monitor = self.clients.monitor(signal.subscription_id)
        start = datetime.now(UTC) - timedelta(days=1)
        if signal.event_time:
            with contextlib.suppress(ValueError):
                start = datetime.fromisoformat(signal.event_time.replace("Z", "+00:00")) - timedelta(hours=1)
        clause = (
            f"correlationId eq '{signal.correlation_id}'"
            if signal.correlation_id
            else f"resourceUri eq '{signal.resource_id}'"
        )
        flt = f"eventTimestamp ge '{_odata_time(start)}' and {clause}"
        deadline = time.monotonic() + self.options.activity_log_wait_seconds
        attempts = 0
        while True:
            attempts += 1
            try:
                records = list(monitor.activity_logs.list(filter=flt))
            except (HttpResponseError, ServiceRequestError) as exc:
                out.notes.append(f"Activity Log could not be read: {self._failure(exc)}")
                return out
            mine = [r for r in records if (r.resource_id or "").lower() == signal.resource_id.lower()]
            # newest first: a replay by resource id wants the latest failed write and its body
            for record in sorted(mine, key=lambda r: r.event_timestamp or datetime.min.replace(tzinfo=UTC),
                                 reverse=True):
                props = record.properties or {}
                body = props.get("requestbody") or props.get("requestBody")
                if body and out.request_body is None:
                    try:
                        parsed = json.loads(body)
                        if isinstance(parsed, dict):
                            out.request_body = parsed
                    except ValueError:
                        out.notes.append("Activity Log request body is not JSON")
                if (record.status and record.status.value == "Failed") or props.get("statusMessage"):
                    found = _error_from_status_message(props.get("statusMessage"))
                    if found and out.error is None:
                        out.error = ErrorInfo(found[0], found[1], "activity-log")
            if out.error or time.monotonic() >= deadline:
                break
            self.options.sleep(self.options.activity_log_poll_seconds)
        if out.error is None:
            out.notes.append(
                f"no failed write for this correlation id in the Activity Log after {attempts} "
                f"look(s) (it can lag by minutes)"
            )
        return out

    # -- definition ---------------------------------------------------------------------------

    def _from_deployment(self, signal: FailureSignal) -> tuple[GroupDefinition | None, ErrorInfo | None, list[str]]:
        notes: list[str] = []
        if not signal.correlation_id:
            return None, None, notes
        client = self.clients.deployments(signal.subscription_id)
        try:
            candidates = [
                d
                for d in client.deployments.list_by_resource_group(signal.resource_group)
                if d.properties and (d.properties.correlation_id or "").lower() == signal.correlation_id.lower()
            ]
        except (HttpResponseError, ServiceRequestError) as exc:
            return None, None, [f"deployments could not be listed: {self._failure(exc)}"]
        for dep in candidates:
            error: ErrorInfo | None = None
            try:
                for op in client.deployment_operations.list(signal.resource_group, dep.name or ""):
                    props = op.properties
                    target = props.target_resource if props else None
                    if props and target and (target.id or "").lower() == signal.resource_id.lower():
                        raw: Any = props.status_message
                        found = _error_from_status_message(raw.as_dict() if hasattr(raw, "as_dict") else raw)
                        if found:
                            error = ErrorInfo(found[0], found[1], "deployment")
            except (HttpResponseError, ServiceRequestError) as exc:
                notes.append(f"deployment operations of {dep.name} could not be read: {self._failure(exc)}")
            try:
                exported = client.deployments.export_template(signal.resource_group, dep.name or "")
            except (HttpResponseError, ServiceRequestError) as exc:
                notes.append(f"template of deployment {dep.name} could not be exported: {self._failure(exc)}")
                return None, error, notes
            template = exported.template or {}
            params = (dep.properties.parameters if dep.properties else None) or {}
            try:
                group_location = (
                    self.clients.resources(signal.subscription_id).resource_groups.get(signal.resource_group).location
                )
            except (HttpResponseError, ServiceRequestError) as exc:
                group_location = ""
                notes.append(f"resource group {signal.resource_group} could not be read: {self._failure(exc)}")
            try:
                found_group = find_container_group(
                    template,
                    params,
                    resource_id=signal.resource_id,
                    location=group_location or "",
                    tenant_id=signal.tenant_id or "",
                )
            except UnsupportedExpression as exc:
                notes.append(
                    f"deployment {dep.name}: the template uses an expression the engine does not "
                    f"resolve ({exc}); not redeploying from it"
                )
                return None, error, notes
            if found_group:
                body, api_version = found_group
                try:
                    return parse_definition(signal.resource_id, body, api_version or None, "deployment"), error, notes
                except InputError as exc:
                    notes.append(f"deployment {dep.name}: the container group in its template cannot be read: {exc}")
                    return None, error, notes
        return None, None, notes

    def _existing(self, signal: FailureSignal) -> dict[str, Any] | None:
        client = self.clients.container_instance(signal.subscription_id)
        try:
            group = client.container_groups.get(signal.resource_group, signal.name)
        except ResourceNotFoundError:
            return None
        return dict(group.serialize(keep_readonly=True))

    # -- registries, identities, roles --------------------------------------------------------

    def _registries_in(self, subscription_id: str) -> list[Registry] | Exception:
        cached = self._registry_lists.get(subscription_id.lower())
        if cached is not None:
            return cached
        try:
            regs = [_registry(r.as_dict()) for r in self.clients.container_registry(subscription_id).registries.list()]
            result: list[Registry] | Exception = regs
        except (HttpResponseError, ServiceRequestError) as exc:
            result = exc
        self._registry_lists[subscription_id.lower()] = result
        return result

    def _identity(self, identity_id: str) -> Identity:
        parts = identity_id.strip("/").split("/")
        try:
            sub, rg, name = parts[1], parts[3], parts[-1]
            ident = self.clients.identities(sub).user_assigned_identities.get(rg, name)
            return Identity(identity_id, ident.principal_id, ident.client_id)
        except IndexError:
            return Identity(identity_id, None, None, found=False)
        except ResourceNotFoundError:
            return Identity(identity_id, None, None, found=False)

    def _assignments(self, registry: Registry, principal_id: str) -> list[RoleAssignment]:
        client = self.clients.authorization(registry.id.split("/")[2])
        items = client.role_assignments.list_for_scope(registry.id, filter=f"principalId eq '{principal_id}'")
        out = []
        for a in items:
            scope = a.scope or ""
            if not scope_applies(scope, registry.id):
                continue
            out.append(RoleAssignment(a.id or "", scope, a.role_definition_id or "", a.principal_id or "", a.condition))
        return out

    def _role_definition(self, role_id: str) -> RoleDefinition | None:
        client = self.clients.authorization(
            role_id.split("/")[2]
            if role_id.startswith("/subscriptions/")
            else self.options.subscriptions[0]
            if self.options.subscriptions
            else "00000000-0000-0000-0000-000000000000"
        )
        try:
            rd = client.role_definitions.get_by_id(role_id)
        except ResourceNotFoundError:
            return None
        return _role_definition(rd)

    def _role_by_name(self, scope: str, name: str) -> RoleDefinition | None:
        client = self.clients.authorization(scope.split("/")[2])
        for rd in client.role_definitions.list(scope, filter=f"roleName eq '{name}'"):
            return _role_definition(rd)
        return None

    def _image_status(self, image: ImageRef) -> ImageStatus:
        client = self.clients.registry_data(image.registry)
        try:
            if image.digest:
                client.get_manifest_properties(image.repository, image.digest)
            else:
                client.get_tag_properties(image.repository, image.tag or "latest")
            return ImageStatus(image, True)
        except ResourceNotFoundError as exc:
            return ImageStatus(image, False, self._failure(exc))
        except (HttpResponseError, ServiceRequestError) as exc:
            return ImageStatus(image, None, f"the registry could not be read: {self._failure(exc)}")

    # -- the whole context --------------------------------------------------------------------

    def gather(self, signal: FailureSignal) -> Context:
        notes: list[str] = []
        pool = self._pool
        sweep = signal.schema == "sweep"
        activity_f = pool.submit(_ActivityFindings) if sweep else pool.submit(self._activity, signal)
        existing_f = pool.submit(self._existing, signal)
        subs = [signal.subscription_id.lower()] + [
            s.lower() for s in self.options.subscriptions if s.lower() != signal.subscription_id.lower()
        ]
        registry_fs: dict[str, Future[list[Registry] | Exception]] = {
            s: pool.submit(self._registries_in, s) for s in subs
        }

        activity = activity_f.result()
        notes.extend(activity.notes)
        error = activity.error
        definition: GroupDefinition | None = None
        if signal.definition:
            # a replayed definition that cannot be read is the caller's error: let InputError through
            definition = parse_definition(
                signal.resource_id, signal.definition, _api_version_of(signal.definition), "replay"
            )
        elif activity.request_body:
            definition = _parse_or_note(signal, activity.request_body, "activity-log", notes)
        if not sweep and (definition is None or error is None):
            dep_def, dep_error, dep_notes = self._from_deployment(signal)
            notes.extend(dep_notes)
            definition = definition or dep_def
            error = error or dep_error
        try:
            existing = existing_f.result()
        except (HttpResponseError, ServiceRequestError) as exc:
            existing = None
            notes.append(f"the container group could not be read: {self._failure(exc)}")
        if definition is None and existing:
            definition = _unless_other_images(_parse_or_note(signal, existing, "existing", notes), error, notes)
        if definition is None and self.options.snapshot:
            snap = self.options.snapshot(signal.resource_id)
            if snap:
                definition = _unless_other_images(_parse_or_note(signal, snap, "snapshot", notes), error, notes)
        if definition is None and not sweep:
            definition = _from_error_message(signal, error)
            notes.append(
                "no definition of the attempted container group could be recovered"
                + (
                    f"; diagnosing from the image named in the error ({', '.join(i.raw for i in definition.images)})"
                    if definition
                    else ""
                )
            )

        registries: dict[str, Registry | None] = {}
        by_server: dict[str, Registry] = {}
        for sub, reg_fut in registry_fs.items():
            result = reg_fut.result()
            if isinstance(result, Exception):
                notes.append(f"registries in subscription {sub} could not be listed: {self._failure(result)}")
                continue
            for reg in result:
                by_server.setdefault(reg.login_server.lower(), reg)
        wanted_servers = _registry_servers(definition)
        for server in wanted_servers:
            registries[server] = by_server.get(server)

        identities: dict[str, Identity] = {}
        ident_fs = {i.lower(): pool.submit(self._identity, i) for i in _credential_identities(definition)}
        for key, ident_fut in ident_fs.items():
            try:
                identities[key] = ident_fut.result()
            except (HttpResponseError, ServiceRequestError) as exc:
                notes.append(f"identity {key} could not be read: {self._failure(exc)}")

        assignment_fs: dict[tuple[str, str], Future[list[RoleAssignment]]] = {}
        for server, maybe_reg in registries.items():
            if maybe_reg is None:
                continue
            for ident in identities.values():
                if ident.principal_id:
                    assignment_fs[(server, ident.principal_id.lower())] = pool.submit(
                        self._assignments, maybe_reg, ident.principal_id
                    )
        image_fs = {
            img.raw: pool.submit(self._image_status, img)
            for img in (definition.images if definition else ())
            if registries.get(img.registry) is not None
        }
        name_scope = next((r.id for r in registries.values() if r), None)
        by_name_fs = (
            {n: pool.submit(self._role_by_name, name_scope, n) for n in (ACR_PULL_NAME, REPOSITORY_READER_NAME)}
            if name_scope
            else {}
        )

        assignments: dict[str, list[RoleAssignment]] = {}
        for (server, pid), assign_fut in assignment_fs.items():
            try:
                listed = assign_fut.result()
                assignments.setdefault(pid, [])  # listed, possibly none: "no role" is a finding
                for a in listed:
                    if a not in assignments.setdefault(pid, []):
                        assignments[pid].append(a)
            except (HttpResponseError, ServiceRequestError) as exc:
                notes.append(f"role assignments of {pid} on {server} could not be listed: {self._failure(exc)}")
        role_ids = {a.role_definition_id for items in assignments.values() for a in items}
        role_fs = {rid: pool.submit(self._role_definition, rid) for rid in role_ids}
        roles: dict[str, RoleDefinition] = {}
        for rid, role_fut in role_fs.items():
            try:
                rd = role_fut.result()
                if rd:
                    roles[rd.guid] = rd
            except (HttpResponseError, ServiceRequestError) as exc:
                notes.append(f"role definition {rid} could not be read: {self._failure(exc)}")
        for name, by_name_fut in by_name_fs.items():
            try:
                rd = by_name_fut.result()
                if rd:
                    roles.setdefault(rd.guid, rd)
            except (HttpResponseError, ServiceRequestError) as exc:
                notes.append(f"role '{name}' could not be looked up: {self._failure(exc)}")
        images = tuple(f.result() for f in image_fs.values())
        for status in images:
            if status.exists is None:
                notes.append(f"whether {status.image.raw} exists is unknown: {status.detail}")
        if signal.definition is None and error is None and existing and not sweep:
            error = _error_from_instance_view(existing)
        return Context(
            signal=signal,
            error=error,
            definition=definition,
            registries=registries,
            identities=identities,
            assignments={k: tuple(v) for k, v in assignments.items()},
            role_definitions=roles,
            images=images,
            existing_group=existing,
            notes=tuple(notes),
        )


_IMAGE_IN_MESSAGE = re.compile(r"The image '(?P<image>[^']+)' in container group")


def _unless_other_images(definition: GroupDefinition | None, error: ErrorInfo | None,
                         notes: list[str]) -> GroupDefinition | None:
    """The live group or a snapshot stands for the failed write only if it has the image that failed.

    A failed update leaves the previous definition in place; redeploying that is not what the user
    asked for, so such a definition is not used (the error message still is, below).
    """
    match = _IMAGE_IN_MESSAGE.search(error.message) if error else None
    if definition is None or match is None:
        return definition
    if match.group("image").lower() not in {i.raw.lower() for i in definition.images}:
        notes.append(f"the {definition.source} definition does not run {match.group('image')}, the image that "
                     "failed; it is not what was attempted, so it is not used")
        return None
    return definition


def _from_error_message(signal: FailureSignal, error: ErrorInfo | None) -> GroupDefinition | None:
    """The image ``InaccessibleImage`` names: enough for the registry-side checks, never for a redeploy."""
    match = _IMAGE_IN_MESSAGE.search(error.message) if error else None
    if match is None:
        return None
    body = {"properties": {"containers": [{"name": "unknown", "properties": {"image": match.group("image")}}]}}
    try:
        return parse_definition(signal.resource_id, body, None, "error-message")
    except InputError:
        return None


def _parse_or_note(
    signal: FailureSignal, body: dict[str, Any], source: Any, notes: list[str]
) -> GroupDefinition | None:
    try:
        return parse_definition(signal.resource_id, body, _api_version_of(body), source)
    except InputError as exc:
        notes.append(f"the definition from {source} could not be read: {exc}")
        return None


def _api_version_of(body: dict[str, Any]) -> str | None:
    value = body.get("apiVersion")
    return str(value) if value else None


def _registry_servers(definition: GroupDefinition | None) -> list[str]:
    if definition is None:
        return []
    servers = [img.registry for img in definition.images if is_acr(img.registry)]
    servers += [c.server.lower() for c in definition.credentials if c.server]
    return list(dict.fromkeys(servers))


def _credential_identities(definition: GroupDefinition | None) -> list[str]:
    if definition is None:
        return []
    ids = [c.identity for c in definition.credentials if c.identity and c.identity.startswith("/")]
    return list(dict.fromkeys(ids))


def _registry(data: dict[str, Any]) -> Registry:
    props = data.get("properties") or data
    rules = props.get("network_rule_set") or props.get("networkRuleSet") or {}
    peps = props.get("private_endpoint_connections") or props.get("privateEndpointConnections") or []
    return Registry(
        id=str(data.get("id", "")),
        name=str(data.get("name", "")),
        login_server=str(props.get("login_server") or props.get("loginServer") or "").lower(),
        sku=(data.get("sku") or {}).get("name"),
        public_network_access=props.get("public_network_access") or props.get("publicNetworkAccess"),
        default_action=rules.get("default_action") or rules.get("defaultAction"),
        bypass=props.get("network_rule_bypass_options") or props.get("networkRuleBypassOptions"),
        role_assignment_mode=props.get("role_assignment_mode") or props.get("roleAssignmentMode"),
        private_endpoints=tuple(str(p.get("id", "")) for p in peps if isinstance(p, dict)),
        ip_rules=len(rules.get("ip_rules") or rules.get("ipRules") or []),
        tags=dict(data.get("tags") or {}),
    )


def _role_definition(rd: Any) -> RoleDefinition:
    perms: Iterable[Any] = rd.permissions or []
    actions: list[str] = []
    not_actions: list[str] = []
    data_actions: list[str] = []
    not_data_actions: list[str] = []
    for p in perms:
        actions += p.actions or []
        not_actions += p.not_actions or []
        data_actions += p.data_actions or []
        not_data_actions += p.not_data_actions or []
    return RoleDefinition(
        rd.id or "",
        rd.role_name or "",
        tuple(actions),
        tuple(not_actions),
        tuple(data_actions),
        tuple(not_data_actions),
        rd.role_type or "BuiltInRole",
    )


def _error_from_instance_view(group: dict[str, Any]) -> ErrorInfo | None:
    """A group that exists but failed: the newest failure event of its containers."""
    props = group.get("properties") or {}
    for container in props.get("containers") or []:
        view = (container.get("properties") or {}).get("instanceView") or {}
        for event in reversed(view.get("events") or []):
            if event.get("type") == "Warning" or "fail" in str(event.get("name", "")).lower():
                message = str(event.get("message", ""))
                # a failed pull in the instance view is what ACI answers InaccessibleImage for at create time
                pull = any(w in message.lower() for w in ("pull", "image")) or "pull" in str(event.get("name")).lower()
                code = "InaccessibleImage" if pull else str(event.get("name", ""))
                return ErrorInfo(code, message, "instance-view")
    return None
