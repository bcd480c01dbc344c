"""Gather the context for a failure signal: every read the checks need, each made once.

Reads that do not depend on each other run concurrently. What cannot be read is not an error:
it becomes a note in the context, so a check that cannot decide stays silent and the report
says why.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import partial
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.mgmt.containerregistry import models as acr

from ..blockers import resolve_effect
from ..definition import DefinitionSource, DefinitionSources, choose_definition, parse_definition
from ..errors import InputError
from ..images import is_acr
from ..model import (
    PRIVATE_ENDPOINT_WRITE,
    Context,
    DenyAssignment,
    ErrorInfo,
    FailureSignal,
    GroupDefinition,
    Identity,
    ImageRef,
    ImageStatus,
    ManagementLock,
    NetworkFacts,
    PolicyAssignment,
    PrivateEndpoint,
    Registry,
    RoleAssignment,
    RoleDefinition,
    Subnet,
    WriteRecord,
)
from ..permissions import scope_applies
from ..resource_ids import parse_resource_id
from ..template import UnsupportedExpression, find_container_group
from .clients import AzureClients
from .errors import CONNECTION_ERRORS, describe, is_transient

Snapshot = Callable[[str], dict[str, Any] | None]
"""Returns the last known-good definition of a container group, if one was recorded."""
_NO_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
GROUP_OPERATIONS = ("Microsoft.ContainerInstance/containerGroups/write",
                    "Microsoft.ContainerInstance/containerGroups/delete")
ACTIVITY_LOG_RETENTION = timedelta(days=90)
ACTIVITY_LOG_LOOKBACK = ACTIVITY_LOG_RETENTION - timedelta(days=1)
"""How far back a sweep reads: a day short of the retention, since the Activity Log answers 400 to a
start time older than it keeps, and the app's clock and Azure's never agree exactly."""
"""How far back the Activity Log keeps records, so how far back a sweep can look for who deployed a group."""
NETWORK_API_VERSION = "2024-05-01"
PRIVATE_DNS_API_VERSION = "2024-06-01"
ACR_DNS_ZONE = "privatelink.azurecr.io"
LOCKS_API_VERSION = "2020-05-01"
"""azure-rest-api-specs ``specification/resources/resource-manager/Microsoft.Authorization/stable/2020-05-01/
locks.json``."""
POLICY_API_VERSION = "2023-04-01"
"""azure-rest-api-specs ``specification/resources/resource-manager/Microsoft.Authorization/stable/2023-04-01/
policyAssignments.json`` and ``policyDefinitions.json``."""
K = TypeVar("K")
T = TypeVar("T")


@dataclass
class GatherOptions:
    subscriptions: tuple[str, ...] = ()
    """Subscriptions to search for registries, besides the failed group's own."""
    activity_log_wait_seconds: float = 120.0
    activity_log_poll_seconds: float = 5.0
    snapshot: Snapshot | None = None
    sleep: Callable[[float], None] = time.sleep
    max_workers: int = 16
    """Reads in flight at once: the second wave of a VNet-injected group already holds ten."""
    history: bool = True
    """False: neither the Activity Log nor the deployments are read, since nothing was written yet and
    the definition comes with the signal (``preflight --live``)."""


@dataclass
class _ActivityFindings:
    error: ErrorInfo | None = None
    request_body: dict[str, Any] | None = None
    failed_write: WriteRecord | None = None
    notes: list[str] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)
    """The group's records in the last look, so the writes after the failed one come from it too."""


@dataclass(frozen=True)
class _DeploymentFindings:
    definition: GroupDefinition | None = None
    error: ErrorInfo | None = None


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
    """Gathers contexts through ``clients``: one per run, closed after it."""

    def __init__(self, clients: AzureClients, options: GatherOptions | None = None) -> None:
        self.clients = clients
        self.options = options or GatherOptions()
        self._pool = ThreadPoolExecutor(max_workers=self.options.max_workers, thread_name_prefix="gather")
        self.transient_failures: list[str] = []
        """Reads that failed for reasons a retry may clear (throttling, 5xx, connection)."""
        self._role_reads: dict[str, Future[RoleDefinition | None]] = {}
        self._role_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    # -- failed reads become notes ------------------------------------------------------------

    def _failure(self, exc: Exception) -> str:
        """One line about a failed read; transient ones are remembered so the run can be retried."""
        text = describe(exc)
        if is_transient(exc):
            self.transient_failures.append(text)
        return text

    @contextlib.contextmanager
    def _noting(self, notes: list[str], failed: str) -> Iterator[None]:
        """Where Azure cannot answer a read in this block, ``"{failed}: {why}"`` goes in ``notes``
        and the gathering goes on."""
        try:
            yield
        except (HttpResponseError, *CONNECTION_ERRORS) as exc:
            notes.append(f"{failed}: {self._failure(exc)}")

    def _noted(self, notes: list[str], failed: str, read: Callable[[], T]) -> T | None:
        """``read()``, or None where Azure could not answer it (see :meth:`_noting`)."""
        with self._noting(notes, failed):
            return read()
        return None

    def _results(self, notes: list[str], reads: Mapping[K, Future[T]], failed: Callable[[K], str]) -> dict[K, T]:
        """The result of each read that Azure answered; each other one is noted (see :meth:`_noting`)."""
        results: dict[K, T] = {}
        for key, read in reads.items():
            with self._noting(notes, failed(key)):
                results[key] = read.result()
        return results

    # -- the whole context --------------------------------------------------------------------

    def gather(self, signal: FailureSignal) -> Context:
        """Every read the checks need for ``signal``. Raises :class:`InputError` for a replayed
        definition that cannot be read, since that is the caller's error."""
        if signal.operation_name.lower() == PRIVATE_ENDPOINT_WRITE.lower():
            return self._private_endpoint_context(signal)
        sweep = signal.schema == "sweep"
        pool = self._pool
        # wave 1: what needs nothing but the signal
        activity = None if sweep or not self.options.history else pool.submit(self._activity, signal)
        existing = pool.submit(self._existing, signal)
        registry_lists = {sub: pool.submit(self._registries_in, sub) for sub in self._subscriptions(signal)}
        sweep_writes = pool.submit(self._group_writes, signal, datetime.now(UTC) - ACTIVITY_LOG_LOOKBACK) \
            if sweep else None

        sources, found = self._definition_sources(signal, activity, existing, sweep=sweep)
        failed_write = found.failed_write
        choice = choose_definition(signal.resource_id, sources)
        definition, notes = choice.definition, list(choice.notes)
        registries = self._registries(definition, registry_lists, notes)
        known = {server: registry for server, registry in registries.items() if registry is not None}
        # wave 2: what the definition, the registries and the failed write's caller name, all at once;
        # the image reads go first, as a cold registry token takes two more calls
        image_reads = {
            image.raw: pool.submit(self._image_status, image)
            for image in (definition.images if definition else ()) if image.registry in known
        }
        identity_reads = {i.lower(): pool.submit(self._identity, i) for i in _credential_identities(definition)}
        # the writes since the failure (the failed write's own Activity Log read holds them) tell
        # whether it is still the group's latest intent
        writes: Future[list[WriteRecord]] | None = sweep_writes if sweep_writes is not None else (
            _done(_writes_since(found.records, signal.resource_id, failed_write.at))
            if failed_write is not None and failed_write.at is not None else None)
        early_deployers = [failed_write.caller] if failed_write is not None and failed_write.caller else []
        assignment_lists = {(server, principal.lower()): pool.submit(self._assignments_and_roles, registry, principal)
                            for server, registry in known.items() for principal in early_deployers}
        blocker_reads = self._blocker_reads(signal, registries, tuple(identity_reads))
        network_reads = self._network_reads(signal, definition, registries)

        identities = self._results(notes, identity_reads, lambda key: f"identity {key} could not be read")
        group_writes = self._noted(notes, "the container group's writes in the Activity Log could not be read",
                                   writes.result) if writes is not None else None
        # who the app acts for: the failed write's caller; for a sweep, whoever wrote the group
        deployers = early_deployers or [w.caller for w in group_writes or () if w.caller]
        # wave 3: the identities' assignments (each list starts its role definitions' reads as it ends)
        principals = [identity.principal_id for identity in identities.values() if identity.principal_id]
        assignment_lists = {
            (server, principal.lower()): assignment_lists.get((server, principal.lower())) or pool.submit(
                self._assignments_and_roles, registry, principal)
            for server, registry in known.items() for principal in dict.fromkeys([*principals, *deployers])
        }
        assignments = self._merged_assignments(assignment_lists, notes)
        roles = self._roles(assignments, notes)
        images = tuple(read.result() for read in image_reads.values())
        locks, denies, policies = self._blockers(blocker_reads, notes)
        notes.extend(f"whether {s.image.raw} exists is unknown: {s.detail}" for s in images if s.exists is None)

        error = sources.error
        if error is None and signal.definition is None and sources.existing and not sweep:
            error = _error_from_instance_view(sources.existing)
        network = self._network(network_reads, notes)
        return Context(
            signal=signal,
            error=error,
            definition=definition,
            registries=registries,
            identities=identities,
            assignments={k: tuple(v) for k, v in assignments.items()},
            role_definitions=roles,
            images=images,
            existing_group=sources.existing,
            failed_write=failed_write,
            group_writes=tuple(group_writes) if group_writes is not None else None,
            notes=tuple(notes),
            read_at=datetime.now(UTC),
            network=network,
            locks=locks,
            deny_assignments=denies,
            policy_assignments=policies,
        )

    def _subscriptions(self, signal: FailureSignal) -> list[str]:
        """Where registries are looked for: the group's own subscription, then the allowed ones."""
        return list(dict.fromkeys([signal.subscription_id.lower(), *(s.lower() for s in self.options.subscriptions)]))

    def _definition_sources(self, signal: FailureSignal, activity: Future[_ActivityFindings] | None,
                            existing: Future[dict[str, Any] | None], *,
                            sweep: bool) -> tuple[DefinitionSources, _ActivityFindings]:
        """Read what the definition is chosen from; a source is read only while it can still matter.
        Also returns what the Activity Log holds of the group (the failed write's record among it)."""
        found = activity.result() if activity else _ActivityFindings()
        read_notes: dict[DefinitionSource, list[str]] = {"activity-log": found.notes, "deployment": [], "existing": []}
        sources = DefinitionSources(replay=signal.definition, activity_log=found.request_body, error=found.error,
                                    from_error_message=not sweep)
        written = choose_definition(signal.resource_id, sources)  # a replay that cannot be read raises here
        # the deployment holds the definition and the error too: read it while either is unknown
        if not sweep and self.options.history and (sources.error is None or not written.recovered):
            deployment = self._from_deployment(signal, read_notes["deployment"])
            sources = replace(sources, deployment=deployment.definition, error=sources.error or deployment.error)
        sources = replace(sources, existing=self._noted(
            read_notes["existing"], "the container group could not be read", existing.result))
        if self.options.snapshot and not choose_definition(signal.resource_id, sources).recovered:
            sources = replace(sources, snapshot=self.options.snapshot(signal.resource_id))
        return replace(sources, read_notes=read_notes), found

    def _registries(self, definition: GroupDefinition | None, listed: Mapping[str, Future[list[Registry]]],
                    notes: list[str]) -> dict[str, Registry | None]:
        """The registry of each login server the definition names (None: not in any subscription read)."""
        by_server: dict[str, Registry] = {}
        for registries in self._results(notes, listed,
                                        lambda sub: f"registries in subscription {sub} could not be listed").values():
            for registry in registries:
                by_server.setdefault(registry.login_server.lower(), registry)
        return {server: by_server.get(server) for server in _registry_servers(definition)}

    def _merged_assignments(self, lists: Mapping[tuple[str, str], Future[list[RoleAssignment]]],
                            notes: list[str]) -> dict[str, list[RoleAssignment]]:
        """Each principal's role assignments on the registries, once each. A principal whose
        assignments were listed has a key even with none: "no role" is a finding."""
        assignments: dict[str, list[RoleAssignment]] = {}
        listed = self._results(
            notes, lists, lambda key: f"role assignments of {key[1]} on {key[0]} could not be listed")
        for (_, principal), found in listed.items():
            merged = assignments.setdefault(principal, [])
            for assignment in found:
                if assignment not in merged:
                    merged.append(assignment)
        return assignments

    def _roles(self, assignments: Mapping[str, list[RoleAssignment]], notes: list[str]) -> dict[str, RoleDefinition]:
        """The definitions of the assigned roles, by role GUID. The roles a fix may assign are named by
        their built-in ids (``remediation.actions.assign_role``), so none is looked up by name: a role's
        permissions are read only where an assignment makes them matter."""
        role_ids = {a.role_definition_id for items in assignments.values() for a in items}
        reads = {rid: self._role_read(rid) for rid in role_ids}
        roles: dict[str, RoleDefinition] = {}
        for rd in self._results(notes, reads, lambda rid: f"role definition {rid} could not be read").values():
            if rd is not None:
                roles[rd.guid] = rd
        return roles

    # -- private networking -------------------------------------------------------------------
    # azure-mgmt-network and azure-mgmt-privatedns are not dependencies: the networking is read
    # with the generic resource client at the specs' api-versions (azure-rest-api-specs,
    # specification/network/resource-manager/Microsoft.Network/stable/2024-05-01/virtualNetwork.json
    # and privateEndpoint.json; specification/privatedns/resource-manager/Microsoft.Network/PrivateDns,
    # 2024-06-01), lists through the same client's pipeline (``send_request``).

    def _network_reads(self, signal: FailureSignal, definition: GroupDefinition | None,
                       registries: Mapping[str, Registry | None]) -> _NetworkReads | None:
        """Start reading the networking a VNet-injected group's pull from a network-restricted
        registry goes through; None for other groups (nothing is read)."""
        restricted = {r.id.lower(): r for r in registries.values() if r is not None and r.network_restricted}
        vnets = tuple(dict.fromkeys(Subnet(s).vnet_id for s in (definition.subnet_ids if definition else ())
                                    if "/subnets/" in s.lower()))
        if not vnets or not restricted:
            return None
        return _NetworkReads(
            vnets=vnets,
            zones=self._pool.submit(self._acr_zones_and_links, self._subscriptions(signal)),
            vnet_reads={v: self._pool.submit(self._vnet, v) for v in vnets},
            endpoint_reads={rid: self._pool.submit(self._registry_endpoints, r) for rid, r in restricted.items()},
        )

    def _network(self, reads: _NetworkReads | None, notes: list[str]) -> NetworkFacts | None:
        """The networking :meth:`_network_reads` started to read (the zones' links once the zones are known)."""
        if reads is None:
            return None
        found = self._noted(notes, "private DNS zones privatelink.azurecr.io could not be listed", reads.zones.result)
        zones, link_reads = (None, {}) if found is None else found
        read_vnets = self._results(notes, reads.vnet_reads, lambda v: f"virtual network {v} could not be read")
        return NetworkFacts(
            group_vnets=reads.vnets,
            peerings={v.lower(): peers for v, (_, peers) in read_vnets.items()},
            endpoints=self._results(notes, reads.endpoint_reads,
                                    lambda rid: f"private endpoints of registry {rid} could not be read"),
            dns_zones=tuple(zones) if zones is not None else None,
            dns_links=self._results(notes, link_reads, lambda z: f"virtual network links of {z} could not be listed"),
            subnets={v.lower(): subnets for v, (subnets, _) in read_vnets.items()},
        )

    def _private_endpoint_context(self, signal: FailureSignal) -> Context:
        """The context of a failed private endpoint write: its error and definition from the
        Activity Log (the failed request), and the subnet it named with its network's subnets."""
        found = self._activity(signal)
        notes = list(found.notes)
        endpoint = _endpoint_from_body(signal.resource_id, found.request_body) if found.request_body else None
        if endpoint is None:
            notes.append("the private endpoint's definition is not in the Activity Log; whether it targets a "
                         "registry is unknown")
        facts = NetworkFacts(failed_endpoint=endpoint)
        if endpoint is not None and endpoint.subnet_id:
            read = self._noted(notes, f"virtual network {endpoint.vnet_id} could not be read",
                               partial(self._vnet, endpoint.vnet_id))
            if read is not None:
                subnets, peers = read
                # the peered networks' subnets are candidates for the endpoint too
                peer_reads = {p: self._pool.submit(self._vnet, p) for p in peers}
                peered = self._results(notes, peer_reads, lambda p: f"peered virtual network {p} could not be read")
                facts = replace(facts, group_vnets=(endpoint.vnet_id,), peerings={endpoint.vnet_id.lower(): peers},
                                subnets={endpoint.vnet_id.lower(): subnets,
                                         **{p.lower(): found for p, (found, _) in peered.items()}})
        return Context(signal=signal, error=found.error, failed_write=found.failed_write, notes=tuple(notes),
                       network=facts)

    def _arm(self, resource_id: str, api_version: str) -> dict[str, Any]:
        """A resource's ARM JSON (``id``, ``name``, ``properties``...) through the generic client."""
        where = parse_resource_id(resource_id)
        found = self.clients.resources(where.subscription).resources.get_by_id(resource_id, api_version=api_version)
        return {"id": found.id or resource_id, "name": found.name, "properties": found.properties or {}}

    def _vnet(self, vnet_id: str) -> tuple[tuple[Subnet, ...], tuple[str, ...]]:
        """A virtual network's subnets (with delegations) and ``Connected`` peerings' remote networks."""
        props = self._arm(vnet_id, NETWORK_API_VERSION)["properties"]
        subnets = tuple(Subnet(str(s.get("id", "")), tuple(
            str((d.get("properties") or {}).get("serviceName", "")) for d in (s.get("properties") or {}).get(
                "delegations") or [])) for s in props.get("subnets") or [])
        peers = tuple(str(((p.get("properties") or {}).get("remoteVirtualNetwork") or {}).get("id", ""))
                      for p in props.get("virtualNetworkPeerings") or []
                      if str((p.get("properties") or {}).get("peeringState", "")).lower() == "connected")
        return subnets, peers

    def _registry_endpoints(self, registry: Registry) -> tuple[PrivateEndpoint, ...]:
        """The private endpoints the registry lists connections for, each read for its subnet."""
        where = parse_resource_id(registry.id)
        connections = self.clients.container_registry(where.subscription).private_endpoint_connections.list(
            where.resource_group or "", where.name)
        ids = [c.private_endpoint.id for c in connections if c.private_endpoint is not None and c.private_endpoint.id]
        out = []
        for endpoint_id in dict.fromkeys(ids):
            body = self._arm(endpoint_id, NETWORK_API_VERSION)
            found = _endpoint_from_body(endpoint_id, body)
            if found is not None:
                out.append(found)
        return tuple(out)

    def _acr_zones(self, subscriptions: list[str]) -> list[str]:
        """The ids of the ``privatelink.azurecr.io`` private DNS zones in ``subscriptions``."""
        return [str(z.get("id")) for sub in subscriptions
                for z in self._arm_list(sub, f"/subscriptions/{sub}/providers/Microsoft.Network/privateDnsZones",
                                        PRIVATE_DNS_API_VERSION)
                if str(z.get("name", "")).lower() == ACR_DNS_ZONE and z.get("id")]

    def _acr_zones_and_links(self, subscriptions: list[str]) -> tuple[list[str], dict[str, Future[tuple[str, ...]]]]:
        """:meth:`_acr_zones`, with the reads of each zone's links started as soon as it is listed."""
        zones = self._acr_zones(subscriptions)
        return zones, {z.lower(): self._pool.submit(self._zone_links, z) for z in zones}

    def _zone_links(self, zone_id: str) -> tuple[str, ...]:
        """The virtual networks linked to a private DNS zone."""
        links = self._arm_list(parse_resource_id(zone_id).subscription, f"{zone_id}/virtualNetworkLinks",
                               PRIVATE_DNS_API_VERSION)
        return tuple(str(((link.get("properties") or {}).get("virtualNetwork") or {}).get("id", ""))
                     for link in links if ((link.get("properties") or {}).get("virtualNetwork") or {}).get("id"))

    # -- activity log -------------------------------------------------------------------------

    def _activity(self, signal: FailureSignal) -> _ActivityFindings:
        """The failed write in the Activity Log: its error and request body, looked for until the
        error shows or ``activity_log_wait_seconds`` pass (the log can lag by minutes)."""
        out = _ActivityFindings()
        monitor = self.clients.monitor(signal.subscription_id)
        flt = _activity_filter(signal)
        deadline = time.monotonic() + self.options.activity_log_wait_seconds
        attempts = 0
        while True:
            attempts += 1
            records = self._noted(out.notes, "Activity Log could not be read",
                                  lambda: list(monitor.activity_logs.list(filter=flt)))
            if records is None:
                return out
            _take_records(records, signal, out)
            if out.error or time.monotonic() >= deadline:
                break
            self.options.sleep(self.options.activity_log_poll_seconds)
        if out.error is None:
            out.notes.append(
                f"no failed write for this correlation id in the Activity Log after {attempts} "
                f"look(s) (it can lag by minutes)"
            )
        return out

    def _group_writes(self, signal: FailureSignal, since: datetime) -> list[WriteRecord]:
        """The group's finished writes and deletes in the Activity Log since ``since``, newest first."""
        monitor = self.clients.monitor(signal.subscription_id)
        flt = f"eventTimestamp ge '{_odata_time(since)}' and resourceUri eq '{signal.resource_id}'"
        return _writes_since(monitor.activity_logs.list(filter=flt), signal.resource_id, since)

    # -- definition ---------------------------------------------------------------------------

    def _from_deployment(self, signal: FailureSignal, notes: list[str]) -> _DeploymentFindings:
        """The group in the template of the deployment that made the failed write, and the error
        its operations report."""
        if not signal.correlation_id:
            return _DeploymentFindings()
        client = self.clients.deployments(signal.subscription_id)
        correlation_id = signal.correlation_id.lower()
        candidates = self._noted(notes, "deployments could not be listed", lambda: [
            d
            for d in client.deployments.list_by_resource_group(signal.resource_group)
            if d.properties and (d.properties.correlation_id or "").lower() == correlation_id
        ])
        resource_group: Future[Any] | None = None
        for dep in candidates or ():
            # the operations, the template and the resource group (its location resolves the
            # template) need only the deployment's name: they are read together
            operations = self._pool.submit(self._operation_error, signal, dep.name or "")
            export = self._pool.submit(client.deployments.export_template, signal.resource_group, dep.name or "")
            resource_group = resource_group or self._pool.submit(
                self.clients.resources(signal.subscription_id).resource_groups.get, signal.resource_group)
            error, failure = operations.result()
            if failure is not None:
                notes.append(f"deployment operations of {dep.name} could not be read: {self._failure(failure)}")
            exported = self._noted(notes, f"template of deployment {dep.name} could not be exported", export.result)
            if exported is None:
                return _DeploymentFindings(None, error)
            group = self._noted(notes, f"resource group {signal.resource_group} could not be read",
                                resource_group.result)
            try:
                found_group = find_container_group(
                    exported.template or {},
                    (dep.properties.parameters if dep.properties else None) or {},
                    resource_id=signal.resource_id,
                    location=(group.location if group is not None else "") or "",
                    tenant_id=signal.tenant_id or "",
                )
            except UnsupportedExpression as exc:
                notes.append(
                    f"deployment {dep.name}: the template uses an expression the engine does not "
                    f"resolve ({exc}); not redeploying from it"
                )
                return _DeploymentFindings(None, error)
            if found_group:
                body, api_version = found_group
                try:
                    return _DeploymentFindings(
                        parse_definition(signal.resource_id, body, api_version or None, "deployment"), error)
                except InputError as exc:
                    notes.append(f"deployment {dep.name}: the container group in its template cannot be read: {exc}")
                    return _DeploymentFindings(None, error)
        return _DeploymentFindings()

    def _operation_error(self, signal: FailureSignal, deployment: str) -> tuple[ErrorInfo | None, Exception | None]:
        """The last error the deployment's operations report on the group, and why they could not all
        be read (a page that fails keeps the errors of the pages before it)."""
        error: ErrorInfo | None = None
        try:
            operations = self.clients.deployments(signal.subscription_id).deployment_operations.list(
                signal.resource_group, deployment)
            for found in _operation_errors(operations, signal.resource_id):
                error = found
        except (HttpResponseError, *CONNECTION_ERRORS) as exc:
            return error, exc
        return error, None

    def _existing(self, signal: FailureSignal) -> dict[str, Any] | None:
        client = self.clients.container_instance(signal.subscription_id)
        try:
            group = client.container_groups.get(signal.resource_group, signal.name)
        except ResourceNotFoundError:
            return None
        return dict(group.serialize(keep_readonly=True))

    # -- registries, identities, roles --------------------------------------------------------

    def _registries_in(self, subscription_id: str) -> list[Registry]:
        registries = self.clients.container_registry(subscription_id).registries.list()
        return [_registry(r) for r in registries]

    def _identity(self, identity_id: str) -> Identity:
        """The user-assigned identity ``identity_id`` names; ``found=False`` where there is none."""
        try:
            where = parse_resource_id(identity_id)
        except InputError:
            return Identity(identity_id, None, None, found=False)
        if not where.resource_group:
            return Identity(identity_id, None, None, found=False)
        try:
            ident = self.clients.identities(where.subscription).user_assigned_identities.get(
                where.resource_group, where.name)
        except ResourceNotFoundError:
            return Identity(identity_id, None, None, found=False)
        return Identity(identity_id, ident.principal_id, ident.client_id)

    def _assignments(self, registry: Registry, principal_id: str) -> list[RoleAssignment]:
        """The principal's role assignments at the registry or above, its groups' included:
        ``assignedTo`` "lists role assignments for a specified user or service principal. If the
        user is a member of a group that has a role assignment, that role assignment is also
        listed" (MicrosoftDocs/azure-docs, articles/role-based-access-control/role-assignments-list-rest.md)."""
        client = self.clients.authorization(parse_resource_id(registry.id).subscription)
        items = client.role_assignments.list_for_scope(registry.id, filter=f"assignedTo('{principal_id}')")
        out = []
        for a in items:
            scope = a.scope or ""
            if not scope_applies(scope, registry.id):
                continue
            # createdOn tells a propagating assignment from a missing one (RoleAssignmentProperties,
            # azure-rest-api-specs specification/authorization/resource-manager/Microsoft.Authorization/
            # stable/2022-04-01/authorization-RoleAssignmentsCalls.json)
            out.append(RoleAssignment(a.id or "", scope, a.role_definition_id or "", a.principal_id or "", a.condition,
                                      a.created_on))
        return out

    def _assignments_and_roles(self, registry: Registry, principal_id: str) -> list[RoleAssignment]:
        """:meth:`_assignments`, starting the reads of their roles' definitions as soon as they are known."""
        found = self._assignments(registry, principal_id)
        for assignment in found:
            self._role_read(assignment.role_definition_id)
        return found

    def _role_read(self, role_id: str) -> Future[RoleDefinition | None]:
        """The read of a role definition, started once per run whoever asks for it first; a built-in
        role these clients kept from an earlier run is not read again (:meth:`AzureClients.kept_role`)."""
        with self._role_lock:
            read = self._role_reads.get(role_id)
            if read is None:
                kept = self.clients.kept_role(role_id)
                read = _done(kept) if kept is not None else self._pool.submit(self._role_definition, role_id)
                self._role_reads[role_id] = read
            return read

    def _role_definition(self, role_id: str) -> RoleDefinition | None:
        try:
            subscription = parse_resource_id(role_id).subscription
        except InputError:
            # a tenant-level role (/providers/Microsoft.Authorization/roleDefinitions/…): get_by_id
            # reads it by its id, so any subscription's client will do
            subscription = self.options.subscriptions[0] if self.options.subscriptions else _NO_SUBSCRIPTION
        try:
            rd = self.clients.authorization(subscription).role_definitions.get_by_id(role_id)
        except ResourceNotFoundError:
            return None
        found = _role_definition(rd)
        # only a built-in role is kept across runs: a custom role is the tenant's to change at any
        # time, and an old copy of it could change a diagnosis
        if rd.role_type == "BuiltInRole":
            self.clients.keep_role(found)
        return found

    # -- blockers: locks, deny assignments, Azure Policy ------------------------------------------

    def _blocker_reads(self, signal: FailureSignal, registries: Mapping[str, Registry | None],
                       identity_ids: tuple[str, ...]) -> _BlockerReads:
        """Start the reads of what would refuse a fix. Each is one list per subscription, of
        everything at or below it (and, for deny and policy assignments, above it), from which
        :meth:`_blockers` keeps what applies: the locks on the registries and the group (not for a
        sweep, which never redeploys), their resource groups and subscriptions; the deny assignments
        at or above them and the identities a redeploy assigns; the policy assignments that apply at
        the network-restricted registries (they weigh only on the network fix, which only such a
        registry gets: ``remediation.actions.enable_trusted_services``)."""
        registry_ids = tuple(dict.fromkeys(r.id for r in registries.values() if r is not None))
        restricted = tuple(dict.fromkeys(r.id for r in registries.values() if r is not None and r.network_restricted))
        # a sweep never redeploys, so only the registries can be written
        targets = registry_ids if signal.schema == "sweep" else (*registry_ids, signal.resource_id)
        deny_targets = targets if signal.schema == "sweep" else (*targets, *identity_ids)
        subscriptions = list(dict.fromkeys(_subscription_of(t).lower() for t in deny_targets))
        pool = self._pool
        return _BlockerReads(
            targets=targets,
            deny_targets=deny_targets,
            policy_targets=restricted,
            locks={sub: pool.submit(self._locks_in, sub) for sub in subscriptions},
            denies={sub: pool.submit(self._deny_assignments_in, sub) for sub in subscriptions},
            policies={sub: pool.submit(self._policy_assignments_in, sub)
                      for sub in dict.fromkeys(_subscription_of(r).lower() for r in restricted)},
        )

    def _blockers(self, reads: _BlockerReads, notes: list[str]) -> tuple[
            tuple[ManagementLock, ...], tuple[DenyAssignment, ...], tuple[PolicyAssignment, ...]]:
        """The locks and deny assignments at or above a target, and the policy assignments that apply
        at a registry with their definitions' rules and effects."""
        def applies(scope: str, targets: Iterable[str]) -> bool:
            return any(scope_applies(scope, target) for target in targets)

        locks = [lock for found in self._results(
            notes, reads.locks, lambda sub: f"locks in subscription {sub} could not be listed").values()
            for lock in found if applies(lock.scope, reads.targets)]
        denies = [deny for found in self._results(
            notes, reads.denies, lambda sub: f"deny assignments in subscription {sub} could not be listed").values()
            for deny in found if applies(deny.scope, reads.deny_targets)]
        raw: dict[str, dict[str, Any]] = {}
        for found_assignments in self._results(
                notes, reads.policies, lambda sub: f"policy assignments in subscription {sub} could not be listed",
        ).values():
            for assignment in found_assignments:
                if applies(str((assignment.get("properties") or {}).get("scope", "")), reads.policy_targets):
                    raw.setdefault(str(assignment.get("id", "")).lower(), assignment)
        definition_ids = {str((a.get("properties") or {}).get("policyDefinitionId", "")) for a in raw.values()}
        definitions = self._results(
            notes, {d: self._pool.submit(self._policy_definition, d) for d in definition_ids if d},
            lambda d: f"policy definition {d} could not be read")
        policies = []
        for assignment in raw.values():
            definition_id = str((assignment.get("properties") or {}).get("policyDefinitionId", ""))
            if "/policysetdefinitions/" in definition_id.lower():
                notes.append(f"policy assignment {assignment.get('id')} assigns an initiative ({definition_id}); "
                             "its policies were not evaluated")
                continue
            policies.append(_policy_assignment(assignment, definitions.get(definition_id) or {}))
        return _unique(locks), _unique(denies), tuple(policies)

    def _arm_list(self, subscription: str, path: str, api_version: str) -> list[dict[str, Any]]:
        """Every item of an ARM list at ``path``, following ``nextLink`` (for the types this SDK set
        has no client for: locks and Azure Policy)."""
        client = self.clients.resources(subscription)
        request: HttpRequest | None = HttpRequest("GET", path, params={"api-version": api_version})
        items: list[dict[str, Any]] = []
        while request is not None:
            response = client.send_request(request)
            if response.status_code >= 400:
                raise HttpResponseError(response=response)
            body = response.json()
            items += [i for i in body.get("value") or [] if isinstance(i, dict)] if isinstance(body, dict) else []
            link = body.get("nextLink") if isinstance(body, dict) else None
            request = HttpRequest("GET", link) if link else None
        return items

    def _locks_in(self, subscription: str) -> list[ManagementLock]:
        """Every lock in the subscription: on it, its resource groups and their resources
        (ManagementLocks_ListAtSubscriptionLevel)."""
        items = self._arm_list(subscription, f"/subscriptions/{subscription}/providers/Microsoft.Authorization/locks",
                               LOCKS_API_VERSION)
        return [ManagementLock(str(i.get("id", "")), str((i.get("properties") or {}).get("level", "")),
                               str((i.get("properties") or {}).get("notes") or "")) for i in items]

    def _deny_assignments_in(self, subscription: str) -> list[DenyAssignment]:
        """The deny assignments at, above and below the subscription (DenyAssignments_ListForScope, no filter)."""
        client = self.clients.authorization(subscription)
        out = []
        for d in client.deny_assignments.list_for_scope(f"/subscriptions/{subscription}"):
            actions: list[str] = []
            not_actions: list[str] = []
            for p in d.permissions or ():
                actions += p.actions or []
                not_actions += p.not_actions or []
            out.append(DenyAssignment(
                id=d.id or "", name=d.deny_assignment_name or d.name or "", scope=d.scope or "",
                actions=tuple(actions), not_actions=tuple(not_actions),
                principals=tuple(p.id or "" for p in d.principals or ()),
                exclude_principals=tuple(p.id or "" for p in d.exclude_principals or ()),
                applies_to_child_scopes=not d.do_not_apply_to_child_scopes))
        return out

    def _policy_assignments_in(self, subscription: str) -> list[dict[str, Any]]:
        """The policy assignments at, above and below the subscription (PolicyAssignments_List, no filter)."""
        return self._arm_list(subscription,
                              f"/subscriptions/{subscription}/providers/Microsoft.Authorization/policyAssignments",
                              POLICY_API_VERSION)

    def _policy_definition(self, definition_id: str) -> dict[str, Any]:
        subscription = _subscription_of(definition_id) or (
            self.options.subscriptions[0] if self.options.subscriptions else _NO_SUBSCRIPTION)
        response = self.clients.resources(subscription).send_request(
            HttpRequest("GET", definition_id, params={"api-version": POLICY_API_VERSION}))
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        body = response.json()
        return body if isinstance(body, dict) else {}

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
        except (HttpResponseError, *CONNECTION_ERRORS) as exc:
            return ImageStatus(image, None, f"the registry could not be read: {self._failure(exc)}")


@dataclass(frozen=True)
class _NetworkReads:
    vnets: tuple[str, ...]
    zones: Future[tuple[list[str], dict[str, Future[tuple[str, ...]]]]]
    vnet_reads: Mapping[str, Future[tuple[tuple[Subnet, ...], tuple[str, ...]]]]
    endpoint_reads: Mapping[str, Future[tuple[PrivateEndpoint, ...]]]


@dataclass(frozen=True)
class _BlockerReads:
    targets: tuple[str, ...]
    deny_targets: tuple[str, ...]
    policy_targets: tuple[str, ...]
    """The network-restricted registries, where the policy assignments are read."""
    locks: Mapping[str, Future[list[ManagementLock]]]
    denies: Mapping[str, Future[list[DenyAssignment]]]
    policies: Mapping[str, Future[list[dict[str, Any]]]]


def _subscription_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


def _unique(items: Iterable[T]) -> tuple[T, ...]:
    """Each item once (by its ``id``, case-insensitive), in the order first seen."""
    seen: dict[str, T] = {}
    for item in items:
        seen.setdefault(str(getattr(item, "id", "")).lower(), item)
    return tuple(seen.values())


def _policy_assignment(assignment: Mapping[str, Any], definition: Mapping[str, Any]) -> PolicyAssignment:
    props = assignment.get("properties") or {}
    definition_props = definition.get("properties") or {}
    found = definition_props.get("policyRule")
    rule: dict[str, Any] = found if isinstance(found, dict) else {}
    return PolicyAssignment(
        id=str(assignment.get("id", "")),
        name=str(assignment.get("name", "")),
        scope=str(props.get("scope", "")),
        definition_id=str(props.get("policyDefinitionId", "")),
        display_name=str(props.get("displayName") or definition_props.get("displayName") or ""),
        enforced=str(props.get("enforcementMode") or "Default").lower() == "default",
        effect=resolve_effect(rule, definition_props.get("parameters") or {}, props.get("parameters") or {}),
        rule=dict(rule),
        not_scopes=tuple(str(s) for s in props.get("notScopes") or ()),
    )


def _activity_filter(signal: FailureSignal) -> str:
    """The OData filter for the group's records from an hour before the event (else from a day ago):
    by resource, not by correlation id, so the one list holds the failed write (picked out by its
    correlation id, see :func:`_take_records`) and every write after it (the Activity Log takes
    only one of ``resourceUri`` and ``correlationId`` in a filter)."""
    start = datetime.now(UTC) - timedelta(days=1)
    if signal.event_time:
        with contextlib.suppress(ValueError):
            start = datetime.fromisoformat(signal.event_time.replace("Z", "+00:00")) - timedelta(hours=1)
    return f"eventTimestamp ge '{_odata_time(start)}' and resourceUri eq '{signal.resource_id}'"


def _writes_since(records: Iterable[Any], resource_id: str, since: datetime) -> list[WriteRecord]:
    """The group's finished writes and deletes among ``records`` after ``since``, newest first."""
    found = []
    for record in records:
        write = _write_record(record)
        if (write is not None and (record.resource_id or "").lower() == resource_id.lower()
                and write.at is not None and write.at > since):
            found.append(write)
    return sorted(found, key=lambda w: w.at or since, reverse=True)


def _done(value: T) -> Future[T]:
    """A read already answered, where the reading code waits on futures."""
    future: Future[T] = Future()
    future.set_result(value)
    return future


def _write_record(record: Any) -> WriteRecord | None:
    """A finished write or delete of a container group (not its start, not another operation)."""
    operation = record.operation_name.value if record.operation_name is not None else ""
    status = record.status.value if record.status is not None else ""
    if operation.lower() not in {o.lower() for o in GROUP_OPERATIONS} or status.lower() not in ("succeeded", "failed"):
        return None
    return WriteRecord(operation, status, record.caller, record.event_timestamp, record.correlation_id)


def _take_records(records: Iterable[Any], signal: FailureSignal, out: _ActivityFindings) -> None:
    """Keep the newest error of the failed write's records (those of the event's correlation id,
    where it gave one) and the request body of that same write (its correlation id), else the
    newest body: a replay by resource id wants the latest failed write and its body, not a later
    write's. The record that holds the error is the failed write's, whose caller is the deployer.
    The group's records are kept in ``out.records``."""
    resource_id = signal.resource_id
    out.records = [r for r in records if (r.resource_id or "").lower() == resource_id.lower()]
    correlation = (signal.correlation_id or "").lower()
    mine = sorted((r for r in out.records if not correlation or (r.correlation_id or "").lower() == correlation),
                  key=lambda r: r.event_timestamp or datetime.min.replace(tzinfo=UTC), reverse=True)
    for record in mine:
        props = record.properties or {}
        if out.error is None and ((record.status and record.status.value == "Failed") or props.get("statusMessage")):
            found = _error_from_status_message(props.get("statusMessage"))
            if found:
                out.error = ErrorInfo(found[0], found[1], "activity-log")
                status = record.status.value if record.status is not None else "Failed"
                operation = record.operation_name.value if record.operation_name is not None else ""
                out.failed_write = WriteRecord(operation, status, record.caller, record.event_timestamp,
                                               record.correlation_id)
    failed = (out.failed_write.correlation_id or "").lower() if out.failed_write is not None else ""
    for record in mine:
        props = record.properties or {}
        # the Activity Log's properties bag spells the key either way
        body = props.get("requestbody") or props.get("requestBody")
        if not body or out.request_body is not None or (failed and (record.correlation_id or "").lower() != failed):
            continue
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                out.request_body = parsed
        except ValueError:
            out.notes.append("Activity Log request body is not JSON")


def _operation_errors(operations: Iterable[Any], resource_id: str) -> Iterator[ErrorInfo]:
    """The errors the deployment operations on ``resource_id`` report, in order."""
    for op in operations:
        props = op.properties
        target = props.target_resource if props else None
        if props and target and (target.id or "").lower() == resource_id.lower():
            raw: Any = props.status_message
            # its wire JSON, read as the Activity Log's is: either shape of error, a deployment's unwrapped
            found = _error_from_status_message(raw.as_dict() if hasattr(raw, "as_dict") else raw)
            if found:
                yield ErrorInfo(found[0], found[1], "deployment")


def _endpoint_from_body(endpoint_id: str, body: Mapping[str, Any]) -> PrivateEndpoint | None:
    """A private endpoint from its ARM JSON: its subnet and the resources it targets for ``registry``."""
    props = body.get("properties")
    if not isinstance(props, Mapping):
        return None
    subnet = props.get("subnet")
    subnet_id = str(subnet.get("id") or "") if isinstance(subnet, Mapping) else ""
    targets = []
    for key in ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections"):
        for conn in props.get(key) or []:
            conn_props = conn.get("properties") if isinstance(conn, Mapping) else None
            if not isinstance(conn_props, Mapping):
                continue
            group_ids = [str(g).lower() for g in conn_props.get("groupIds") or []]
            target = str(conn_props.get("privateLinkServiceId") or "")
            if target and "/microsoft.containerregistry/registries/" in target.lower() and "registry" in group_ids:
                targets.append(target)
    return PrivateEndpoint(endpoint_id, subnet_id, tuple(dict.fromkeys(targets)))


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


def _registry(registry: acr.Registry) -> Registry:
    rules = registry.network_rule_set
    return Registry(
        id=registry.id or "",
        name=registry.name or "",
        login_server=(registry.login_server or "").lower(),
        sku=_wire(registry.sku.name) if registry.sku is not None else None,
        public_network_access=_wire(registry.public_network_access),
        default_action=_wire(rules.default_action) if rules is not None else None,
        bypass=_wire(registry.network_rule_bypass_options),
        role_assignment_mode=_wire(registry.role_assignment_mode),
        private_endpoints=tuple(p.id or "" for p in registry.private_endpoint_connections or ()),
        ip_rules=len((rules.ip_rules if rules is not None else None) or ()),
        tags=dict(registry.tags or {}),
    )


def _wire(value: Any) -> str | None:
    """An SDK enum member as the text Azure sent (a value the SDK does not know stays text)."""
    if value is None:
        return None
    return str(value.value if isinstance(value, Enum) else value)


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
