"""``preflight --live``: each declared container group read against Azure as the project's gatherer reads
a replayed definition, then every check.

Read-only: the gatherer runs with ``history=False`` (no Activity Log, no deployments: nothing was
written yet), so its calls are GETs and lists, and the registry token exchange. The stand-in
deployment scope (:data:`~remediation.preflight.model.SUBSCRIPTION`,
:data:`~remediation.preflight.model.RESOURCE_GROUP`) is replaced by the subscription and resource
group given. What the file itself creates is not in Azure yet, so a registry it declares is not
reported as not found; everything else the live context decides stands.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from remediation.azure.clients import AzureClients
from remediation.azure.gather import Gatherer, GatherOptions
from remediation.model import FailureSignal, RbacRules
from remediation.preflight.checks import Note, PreflightFinding, check_subject
from remediation.preflight.context import GROUP_TYPE, REGISTRY_TYPE, Index, Subject, login_server, subjects
from remediation.preflight.model import RESOURCE_GROUP, SUBSCRIPTION, Definitions
from remediation.settings import Settings

_NOT_DECLARED_HERE = "ACR_NOT_FOUND"


def live_file(definitions: Definitions, *, clients: AzureClients, settings: Settings, subscription: str,
              resource_group: str) -> tuple[list[PreflightFinding], list[Note]]:
    """:func:`live_findings` of every container group ``definitions`` declares."""
    findings: list[PreflightFinding] = []
    notes: list[Note] = []
    for subject in subjects(definitions):
        more, more_notes = live_findings(definitions, subject, clients=clients, settings=settings,
                                         subscription=subscription, resource_group=resource_group)
        findings.extend(more)
        notes.extend(more_notes)
    return findings, notes


def live_findings(definitions: Definitions, subject: Subject, *, clients: AzureClients, settings: Settings,
                  subscription: str, resource_group: str) -> tuple[list[PreflightFinding], list[Note]]:
    """The checks' findings for one declared container group with what Azure holds around it."""
    if subject.declared.type.lower() != GROUP_TYPE:
        return [], []
    body = in_scope(subject.context.signal.definition or {}, subscription, resource_group)
    if subject.declared.api_version:
        body["apiVersion"] = subject.declared.api_version
    resource_id = in_scope(subject.context.signal.resource_id, subscription, resource_group)
    signal = FailureSignal(resource_id=resource_id, subscription_id=subscription, resource_group=resource_group,
                           name=subject.declared.name, schema="cli", definition=body)
    gatherer = Gatherer(clients, GatherOptions(subscriptions=(subscription,), history=False))
    try:
        ctx = gatherer.gather(signal)
    finally:
        gatherer.close()
    ctx = replace(ctx, rbac=RbacRules(settings.rbac_propagation_minutes, settings.tenant_has_arm_private_link))
    declared_servers = {login_server(r) for r in Index.of(definitions).typed(REGISTRY_TYPE)}
    findings, notes = check_subject(definitions, subject, context=ctx)
    kept = [f for f in findings
            if not (f.code == _NOT_DECLARED_HERE and str(f.evidence.get("loginServer")) in declared_servers)]
    where = subject.declared.location
    return kept, [*notes, *(Note(f"live: {n}", where) for n in ctx.notes)]


def in_scope(value: Any, subscription: str, resource_group: str) -> Any:
    """``value`` (a JSON value) with the stand-in subscription and resource group replaced."""
    text = json.dumps(value)
    text = re.sub(f"/subscriptions/{SUBSCRIPTION}", f"/subscriptions/{subscription}", text, flags=re.IGNORECASE)
    text = re.sub(f"/resourceGroups/{RESOURCE_GROUP}(?=[/\"])", f"/resourceGroups/{resource_group}", text,
                  flags=re.IGNORECASE)
    return json.loads(text)
