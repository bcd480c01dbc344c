"""The network causes end to end in the sandbox: what the gather reads, and the private endpoint
writes that are not ours."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from remediation.demo import demo_settings, engine_for, user_write
from remediation.signal import parse_event
from sandbox import Sandbox, parse_scenario
from sandbox.eventgrid import dispatcher
from tests.worlds import failed_event

ROOT = Path(__file__).resolve().parents[1]
STORAGE = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/myResourceGroup/providers/"
           "Microsoft.Storage/storageAccounts/mystorage")


def _scenario(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((ROOT / "scenarios" / f"{name}.json").read_text()))


def _run_private_endpoint(data: dict[str, Any]) -> dict[str, Any]:
    scenario = parse_scenario(data)
    with Sandbox(scenario) as sb:
        events: list[dict[str, Any]] = []
        sb.subscribe(events.append, included_event_types=["Microsoft.Resources.ResourceWriteFailure"])
        assert user_write(sb, scenario) is not None
        dispatcher(sb.world).wait_idle()
        (event,) = events
        engine = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True)
        try:
            return engine.run(parse_event(event), trigger="eventgrid")
        finally:
            engine.clients.close()


def test_a_storage_accounts_private_endpoint_in_the_aci_subnet_is_skipped() -> None:
    data = _scenario("private-endpoint-in-delegated-subnet")
    (conn,) = data["failedWrite"]["body"]["properties"]["privateLinkServiceConnections"]
    conn["properties"] = {"privateLinkServiceId": STORAGE, "groupIds": ["blob"]}
    report = _run_private_endpoint(data)
    assert report["outcome"] == "skipped"
    assert report["skipReason"] == "not an image-pull failure (PrivateEndpointCreationNotAllowedAsSubnetIsDelegated)"


def test_a_registry_endpoint_whose_request_body_is_not_logged_is_skipped_with_the_reason() -> None:
    data = _scenario("private-endpoint-in-delegated-subnet")
    data["behaviour"]["activityLogRequestBody"] = False
    report = _run_private_endpoint(data)
    assert report["outcome"] == "skipped"
    assert any("whether it targets a registry is unknown" in note for note in report["notes"])


def test_the_registry_endpoint_report_names_the_subnet_and_proposes_the_free_one() -> None:
    report = _run_private_endpoint(_scenario("private-endpoint-in-delegated-subnet"))
    assert report["outcome"] == "diagnosed" and report["actions"] == []
    (cause,) = report["causes"]
    assert cause["code"] == "ACI_PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET"
    assert cause["evidence"]["subnetId"].endswith("/virtualNetworks/aci-vnet/subnets/aci-subnet")
    assert [s.rsplit("/", 1)[-1] for s in cause["evidence"]["nonDelegatedSubnets"]] == ["pe-subnet"]


def test_networking_is_read_only_for_a_vnet_injected_group_and_a_restricted_registry() -> None:
    for name, reads_network in (("missing-acrpull", False), ("vnet-injected", False),
                                ("vnet-registry-unreachable", True)):
        scenario = parse_scenario(_scenario(name))
        with Sandbox(scenario) as sb:
            event = failed_event(sb, scenario)
            engine = engine_for(sb, scenario, demo_settings(sb, scenario), virtual_clock=True)
            engine.run(parse_event(event), trigger="eventgrid")
            engine.clients.close()
            calls = [r for r in sb.world.request_log if (r.caller or "").lower() == sb.world.remediator.lower()
                     and "/providers/microsoft.network/" in r.path.lower()]
            assert bool(calls) is reads_network, name
            assert all(r.method == "GET" for r in calls)


def test_a_free_subnet_in_a_peered_network_is_read_and_proposed() -> None:
    data = _scenario("private-endpoint-in-delegated-subnet")
    aci = next(r for r in data["resources"] if r["type"] == "Microsoft.Network/virtualNetworks")
    hub = copy.deepcopy(aci)
    hub["id"], hub["name"] = aci["id"].replace("/aci-vnet", "/hub-vnet"), "hub-vnet"
    hub["properties"]["subnets"] = [s for s in hub["properties"]["subnets"] if s["name"] == "pe-subnet"]
    for item in hub["properties"]["subnets"]:
        item["id"] = item["id"].replace("/aci-vnet/", "/hub-vnet/")
    aci["properties"]["subnets"] = [s for s in aci["properties"]["subnets"] if s["name"] == "aci-subnet"]
    aci["properties"]["virtualNetworkPeerings"] = [{
        "id": f"{aci['id']}/virtualNetworkPeerings/to-hub", "name": "to-hub",
        "properties": {"peeringState": "Connected", "remoteVirtualNetwork": {"id": hub["id"]}}}]
    data["resources"].append(hub)
    report = _run_private_endpoint(data)
    (cause,) = report["causes"]
    assert cause["evidence"]["peeredNetworks"] == [hub["id"]]
    assert cause["evidence"]["nonDelegatedSubnets"] == [f"{hub['id']}/subnets/pe-subnet"]
