"""Host conformance: the app as the genuine Azure Functions Python worker loads and runs it.

The worker's own code (PyPI ``azure-functions-runtime``, installed by ``make setup``) imports
``function_app.py``, indexes it, and decodes every trigger payload with the genuine
``azure.functions`` converters (``tests/host.py`` plays the host's side of the protocol). If a
function's annotation, binding or setting would keep the real host from loading it, a test here
fails.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.storage.queue import QueueClient

from remediation.storage import MAX_MESSAGE_BYTES, HostStorage, encoded_size, max_dequeue_count
from sandbox.eventgrid import to_cloud_event
from tests.app import ROOT, World, the_host
from tests.host import Host, protos
from tests.http_receiver import Receiver
from tests.test_infra import MAIN, _app_settings, _literal, _params, _source

SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
HOST_JSON = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))


def _decorated_functions() -> set[str]:
    """The functions ``function_app.py`` registers, read from its source (``@app.…`` decorators)."""
    tree = ast.parse((ROOT / "function_app.py").read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            and any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
                    and isinstance(d.func.value, ast.Name) and d.func.value.id == "app" for d in node.decorator_list)}


# --- indexing ---------------------------------------------------------------------------------


def test_the_worker_indexes_every_function_of_the_app() -> None:
    host = the_host()
    assert host.init_ok, host.init_error
    names = _decorated_functions()
    assert len(names) >= 9
    assert set(host.metadata) == names
    for name, meta in host.metadata.items():
        assert meta.language == "python" and meta.entry_point == name
        assert meta.properties["worker_indexed"] == "True"
        triggers = [b for b in host.raw_bindings(name) if b["type"].endswith("Trigger")]
        assert len(triggers) == 1, name


def test_the_worker_refuses_a_union_annotation_so_this_suite_would_catch_it() -> None:
    """The oracle itself: the annotation main had before is refused, one class is accepted."""
    from azure_functions_runtime.bindings import meta
    from azure_functions_runtime.functions import FunctionLoadError, Registry

    meta.load_binding_registry()
    app = func.FunctionApp()

    @app.event_grid_trigger(arg_name="event")
    def union(event: func.EventGridEvent | func.CloudEvent) -> None:
        """The pre-fix annotation."""

    @app.event_grid_trigger(arg_name="event")
    def one_class(event: func.EventGridEvent) -> None:
        """One class."""

    functions = {f.get_function_name(): f for f in app.get_functions()}
    with pytest.raises(FunctionLoadError, match="invalid non-type annotation"):
        Registry().add_indexed_function(functions["union"], protos)
    assert Registry().add_indexed_function(functions["one_class"], protos).name == "one_class"


def test_an_app_the_worker_cannot_index_is_reported_as_an_init_failure(tmp_path: Path) -> None:
    """The harness reports what the host would see: a failed init and no functions."""
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\napp = func.FunctionApp()\n\n"
        "@app.queue_trigger(arg_name='msg', queue_name='q', connection='AzureWebJobsStorage')\n"
        "def broken(msg: func.QueueMessage | str) -> None:\n    pass\n", encoding="utf-8")
    the_host()  # the real app is indexed first, as it would be in this process anyway
    saved = sys.modules.pop("function_app")
    sys.path.insert(0, str(tmp_path))
    try:
        broken = Host(tmp_path)
        assert not broken.init_ok
        assert "invalid non-type annotation" in broken.init_error
        broken.close()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules["function_app"] = saved


# --- converters: what the host puts on the wire -------------------------------------------------


def test_event_grid_and_cloud_events_deliveries_reach_the_app_exactly_as_sent(world: World) -> None:
    event = world.fail()
    assert re.fullmatch(r".*\.\d{7}Z", event["eventTime"]) and event["metadataVersion"] == "1"
    cloud = {**to_cloud_event(event), "datacontenttype": "application/json", "traceparent":
             "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    for delivered in (event, cloud):
        message = world.deliver(delivered).output("jobs")
        job = json.loads(message)
        assert job["event"] == delivered  # every wire field: eventTime's 7 digits, metadataVersion, extensions
    results = world.drain()
    assert [r.ok for r in results] == [True, True]
    outcomes = sorted(r["outcome"] for r in world.service.ledger.reports_for(event["subject"]))
    assert outcomes == ["remediated"]  # the CloudEvents copy of the same failure is a duplicate: no second run


def test_the_event_grid_converter_would_lose_wire_fields() -> None:
    """Why the trigger takes ``str``: the genuine converter returns a CloudEvent for CloudEvents
    payloads, but keeps neither metadataVersion nor the seventh digit of eventTime."""
    from azure_functions_runtime.bindings import meta

    meta.load_binding_registry()
    converter = meta.get_binding("eventGridTrigger")
    wire = {"id": "1", "topic": "/subscriptions/s", "subject": "x", "eventType": "t", "dataVersion": "2",
            "metadataVersion": "1", "eventTime": "2026-12-01T10:00:00.1234567Z", "data": {}}
    decoded = converter.decode(meta.Datum(json.dumps(wire), "json"), trigger_metadata={})
    assert isinstance(decoded, func.EventGridEvent) and not hasattr(decoded, "metadata_version")
    cloud = converter.decode(meta.Datum(json.dumps({"specversion": "1.0", "id": "1", "source": "s", "type": "t",
                                                    "data": {}}), "json"), trigger_metadata={})
    assert isinstance(cloud, func.CloudEvent)


def test_the_queue_message_is_base64_as_the_output_binding_writes_it(world: World) -> None:
    event = world.fail()
    written = world.deliver(event).output("jobs")
    raw = QueueClient.from_connection_string(_conn(world), world.queue.queue_name)
    [peeked] = raw.peek_messages(max_messages=1)
    assert base64.b64decode(peeked.content).decode() == written  # what the host's trigger decodes
    raw.close()
    [result] = world.drain()
    assert result.ok, result.error


def _conn(world: World) -> str:
    """A connection string to the world's Azurite queue service, for a client without base64 decoding."""
    from tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME

    base = world.queue.url.rsplit("/", 1)[0]
    return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};QueueEndpoint={base};"


def test_the_dequeue_count_reaches_the_app_and_the_last_delivery_keeps_a_failed_report(world: World) -> None:
    world.sb.world.behaviour["activityLogLagSeconds"] = 3600  # the failure's record never shows up in time
    world.service.gather_options.activity_log_wait_seconds = 0
    event = world.fail()
    world.deliver(event)
    results = world.drain()
    assert [r.ok for r in results] == [False] * (world.service.max_dequeue - 1) + [True]
    [report] = world.service.ledger.reports_for(event["subject"])
    assert report["outcome"] == "failed" and "Activity Log" in report["error"]
    assert list(world.poison.peek_messages()) == []


def test_an_event_too_large_for_a_queue_message_is_kept_in_a_blob_and_still_runs(world: World) -> None:
    event = world.fail()
    big = json.loads(json.dumps(event))
    big["data"]["claims"]["padding"] = "x" * (MAX_MESSAGE_BYTES + 1)  # Event Grid allows events up to 1 MB
    message = world.deliver(big).output("jobs")
    assert encoded_size(message) <= MAX_MESSAGE_BYTES and json.loads(message)["kind"] == "payload"
    [result] = world.drain()
    assert result.ok, result.error
    assert [r["outcome"] for r in world.service.ledger.reports_for(event["subject"])] == ["remediated"]


# --- poison messages ----------------------------------------------------------------------------


def test_a_poisoned_job_is_stored_as_failed_and_notified(world: World) -> None:
    receiver = Receiver()
    try:
        from tests.test_function_app import with_settings

        service = with_settings(world, {"WEBHOOK_URL": f"{receiver.base}/hook"})
        event = world.fail()
        world.deliver(event)
        original = service.ledger.claim

        def storage_down(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("table storage unreachable")

        service.ledger.claim = storage_down  # type: ignore[method-assign]
        results = world.drain()
        service.ledger.claim = original  # type: ignore[method-assign]
        assert len(results) == service.max_dequeue and not any(r.ok for r in results)
        assert service.ledger.reports_for(event["subject"]) == []  # nothing yet: the queue gave up silently
        [poisoned] = world.drain_poison()
        assert poisoned.ok, poisoned.error
        [report] = service.ledger.reports_for(event["subject"])
        assert report["outcome"] == "failed" and "poison" in report["error"]
        assert {n["channel"]: n["status"] for n in report["notifications"]}["webhook"] == "sent"
        assert [json.loads(r.body)["outcome"] for r in receiver.requests] == ["failed"]
    finally:
        receiver.stop()


def test_a_poisoned_job_whose_failure_was_remediated_is_not_reported_again(world: World) -> None:
    receiver = Receiver()
    try:
        from tests.test_function_app import with_settings

        service = with_settings(world, {"WEBHOOK_URL": f"{receiver.base}/hook"})
        event = world.fail()
        message = world.deliver(event).output("jobs")
        assert [r.ok for r in world.drain()] == [True]
        world.poison.send_message(message)  # a copy of the job the queue gave up on, its failure long fixed
        [poisoned] = world.drain_poison()
        assert poisoned.ok, poisoned.error
        assert [r["outcome"] for r in service.ledger.reports_for(event["subject"])] == ["remediated"]
        assert [json.loads(r.body)["outcome"] for r in receiver.requests] == ["remediated"]
    finally:
        receiver.stop()


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_CLAIM_TTL_SECONDS": "2"})
def test_a_poisoned_job_whose_failure_a_dead_run_holds_waits_for_it_and_is_remediated(world: World) -> None:
    event = world.fail()
    message = world.deliver(event).output("jobs")
    world.queue.clear_messages()  # its runs died, and the host moved it to the poison queue
    ledger = world.service.ledger
    assert ledger.claim(event["subject"], event["data"]["correlationId"], owner="dead-worker") is not None
    world.poison.send_message(message)
    [poisoned] = world.drain_poison()
    assert poisoned.ok, poisoned.error
    assert ledger.reports_for(event["subject"]) == []  # not failed yet: it waits for the dead run's claim
    assert [r.ok for r in world.drain()] == [True]
    assert [r["outcome"] for r in ledger.reports_for(event["subject"])] == ["remediated"]


def test_the_dequeue_limit_is_read_from_host_json_and_its_app_setting_override(tmp_path: Path) -> None:
    assert max_dequeue_count({}) == HOST_JSON["extensions"]["queues"]["maxDequeueCount"]
    assert max_dequeue_count({"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "9"}) == 9
    custom = tmp_path / "host.json"
    custom.write_text(json.dumps({"version": "2.0", "extensions": {"queues": {"maxDequeueCount": 2}}}))
    assert max_dequeue_count({}, custom) == 2
    custom.write_text(json.dumps({"version": "2.0"}))
    assert max_dequeue_count({}, custom) == 5  # the extension's default


# --- replay through the queue -------------------------------------------------------------------


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_REDEPLOY_BUDGET_SECONDS": "600"})
def test_a_replay_of_100_dead_lettered_events_is_accepted_and_every_event_processed(world: World) -> None:
    from remediation.demo import user_write
    from sandbox.eventgrid import dispatcher

    for _ in range(100):  # a user retrying the same broken deployment: 100 failures, 100 events
        assert user_write(world.sb, world.scenario) is not None
    dispatcher(world.sb.world).wait_idle()
    events = [e for e in world.events if "/containergroups/" in e["subject"].lower()]
    dead = [{**e, "deadLetterReason": "MaxDeliveryAttemptsExceeded", "deliveryAttempts": 30} for e in events]
    assert len(dead) == 100
    status, body = world.http("replay", "POST", "replay", body=dead)
    assert status == 202 and body["events"] == 100
    assert world.queue.get_queue_properties().approximate_message_count == 100  # one message per event
    results = world.drain()
    assert len(results) == 100 and all(r.ok for r in results)
    status, reports = world.http("get_remediation", "GET", "x", route_params={"id": body["id"]})
    assert status == 200 and len(reports) == 100
    assert sorted({r["correlationId"] for r in reports}) == sorted({e["data"]["correlationId"] for e in events})
    assert "remediated" in {r["outcome"] for r in reports}
    kinds = sorted(w.path.split("/providers/")[-1].split("/")[1] for w in world.remediator_writes())
    assert kinds == ["containerGroups", "roleAssignments"]  # one fix, one redeploy, for all 100


class BrokenQueue:
    def __init__(self, fail_after: int) -> None:
        self.sent: list[str] = []
        self.fail_after = fail_after

    def send(self, text: str) -> None:
        if len(self.sent) >= self.fail_after:
            raise ConnectionError("queue storage unreachable")
        self.sent.append(text)


@pytest.mark.scenario("scenarios/missing-acrpull.json", settings={"REMEDIATION_REDEPLOY_BUDGET_SECONDS": "600"})
def test_a_replay_that_cannot_be_queued_leaves_no_queued_job_that_never_runs(world: World) -> None:
    event = world.fail()
    world.service.jobs = BrokenQueue(fail_after=1)  # type: ignore[assignment]
    second = {**event, "id": str(uuid.uuid4())}
    status, body = world.http("replay", "POST", "replay", body=[event, second])
    assert status == 503 and "1 of 2 events were queued" in body["error"] and "\n" not in body["error"]
    status, job = world.http("get_remediation", "GET", "x", route_params={"id": body["id"]})
    assert status == 200 and job["status"] == "failed" and job["of"] == 1


# --- settings the bindings name -----------------------------------------------------------------

_NCRONTAB_FIELD = re.compile(r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*")
_RANGES = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
_QUEUE = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")


def _valid_ncrontab(expression: str) -> bool:
    """Six fields ({second} {minute} {hour} {day} {month} {day-of-week}), as the Functions timer wants."""
    fields = expression.split()
    if len(fields) != 6:
        return False
    for text, (low, high) in zip(fields, _RANGES, strict=True):
        if not _NCRONTAB_FIELD.fullmatch(text):
            return False
        if any(not low <= int(n) <= high for n in re.findall(r"(?<![/\d])\d+", text)):
            return False
    return True


def test_the_ncrontab_check_is_strict() -> None:
    assert _valid_ncrontab("0 30 3 * * *") and _valid_ncrontab("0 0 */6 * * *")
    assert not _valid_ncrontab("0 */6 * * *")  # five fields: classic cron, refused by the host
    assert not _valid_ncrontab("0 61 3 * * *") and not _valid_ncrontab("0 0 x * * *")


def _infra_value(name: str) -> str | None:
    expr = _app_settings()[name]
    literal = _literal(expr)
    if literal is not None:
        return literal
    default = _params(_source(MAIN)).get(expr)
    return _literal(default) if default else None


def test_every_setting_a_binding_names_resolves_to_a_valid_value_locally_and_in_azure() -> None:
    host = the_host()
    seen: dict[str, list[str]] = {}
    for name in host.metadata:
        for binding in host.raw_bindings(name):
            for key, value in binding.items():
                for setting in re.findall(r"%([^%]+)%", str(value)):
                    seen.setdefault(setting, []).append(key)
                if key == "connection":
                    assert value == "AzureWebJobsStorage"
    assert {"REMEDIATION_JOBS_QUEUE", "REMEDIATION_SWEEP_SCHEDULE"} <= set(seen)
    infra = _app_settings()
    assert "AzureWebJobsStorage" in SAMPLE and "AzureWebJobsStorage__accountName" in infra
    for setting, uses in seen.items():
        for where, value in (("local.settings.sample.json", SAMPLE.get(setting)),
                             ("infra app settings", _infra_value(setting) if setting in infra else None)):
            assert value, f"{setting} is not set in {where}"
            for key in uses:
                if key == "schedule":
                    assert _valid_ncrontab(value), f"{setting}={value!r} in {where} is not six-field NCRONTAB"
                if key == "queueName":
                    for queue in (value, f"{value}-poison"):
                        assert _QUEUE.fullmatch(queue), f"{queue!r} ({where}) is not a valid queue name"
    for name in host.metadata:  # literal schedules too
        for binding in host.raw_bindings(name):
            if binding["type"] == "timerTrigger" and "%" not in binding["schedule"]:
                assert _valid_ncrontab(binding["schedule"])


# --- host.json, concurrency and telemetry --------------------------------------------------------


def test_host_json_keeps_request_telemetry_and_sizes_concurrency_for_long_jobs() -> None:
    levels = HOST_JSON["logging"]["logLevel"]
    order = ["Trace", "Debug", "Information", "Warning", "Error", "Critical", "None"]
    results = levels.get("Host.Results", levels.get("Host", levels.get("default", "Information")))
    assert order.index(results) <= order.index("Information"), "Host.Results would drop the requests table"
    assert "Request" in HOST_JSON["logging"]["applicationInsights"]["samplingSettings"]["excludedTypes"]
    queues = HOST_JSON["extensions"]["queues"]
    jobs_at_once = queues["batchSize"] + queues["newBatchThreshold"]
    for threads in (int(SAMPLE["PYTHON_THREADPOOL_THREAD_COUNT"]), int(_infra_value("PYTHON_THREADPOOL_THREAD_COUNT")
                                                                           or 0)):
        assert threads - jobs_at_once >= 8, "Event Grid deliveries would wait behind remediation jobs"
    hours, minutes, seconds = (int(p) for p in HOST_JSON["functionTimeout"].split(":"))
    budget = int(SAMPLE["REMEDIATION_REDEPLOY_BUDGET_SECONDS"]) + int(SAMPLE["REMEDIATION_ACTIVITY_LOG_WAIT_SECONDS"])
    assert hours * 3600 + minutes * 60 + seconds > budget
    assert queues.get("messageEncoding", "base64") == "base64"


def _run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_telemetry_exports_metrics_only_so_logs_reach_application_insights_once() -> None:
    out = _run_python(
        "import logging, json\n"
        "from opentelemetry import metrics\n"
        "from remediation import telemetry\n"
        "before = [len(logging.getLogger(n).handlers) for n in ('', 'remediation')]\n"
        "ok = telemetry.configure({'APPLICATIONINSIGHTS_CONNECTION_STRING': "
        "'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/'})\n"
        "after = [len(logging.getLogger(n).handlers) for n in ('', 'remediation')]\n"
        "print(json.dumps([ok, before, after, type(metrics.get_meter_provider()).__module__]))\n")
    ok, before, after, provider = json.loads(out.splitlines()[-1])
    assert ok and before == after  # no logging handler added: the worker already forwards logs
    assert provider.startswith("opentelemetry.sdk.metrics")


def test_importing_the_app_loads_no_azure_sdk_until_a_function_needs_it() -> None:
    out = _run_python("import sys, function_app\n"
                      "print(sorted(m for m in sys.modules if m.startswith(('azure.mgmt', 'azure.storage', "
                      "'azure.data', 'azure.identity', 'remediation.service'))))")
    assert out.strip() == "[]"
    out = _run_python("import sys, function_app, remediation.service\n"
                      "print(sorted(m for m in sys.modules if m.startswith('azure.mgmt')))")
    assert out.strip() == "[]", "queuing an event should not load the management SDKs"


# --- storage and clouds -------------------------------------------------------------------------


def test_host_storage_follows_the_hosts_identity_based_settings() -> None:
    by_account = HostStorage.from_env({"AzureWebJobsStorage__accountName": "stremediator",
                                       "AzureWebJobsStorage__credential": "managedidentity",
                                       "AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555"})
    assert by_account.table_endpoint == "https://stremediator.table.core.windows.net"
    assert by_account.queue_endpoint == "https://stremediator.queue.core.windows.net"
    assert by_account.client_id == "11111111-2222-3333-4444-555555555555"
    sovereign = HostStorage.from_env({f"AzureWebJobsStorage__{s}ServiceUri": f"https://st.{s}.core.usgovcloudapi.net"
                                      for s in ("blob", "queue", "table")})
    assert sovereign.blob_endpoint == "https://st.blob.core.usgovcloudapi.net"
    assert sovereign.table_endpoint == "https://st.table.core.usgovcloudapi.net"
    assert sovereign.client_id == ""
    local = HostStorage.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert "QueueEndpoint=http://127.0.0.1:10001" in local.connection_string
    for bad in ({}, {"AzureWebJobsStorage__blobServiceUri": "https://b"},
                {"AzureWebJobsStorage__accountName": "st", "AzureWebJobsStorage__credential": "secret"}):
        with pytest.raises(Exception) as info:
            HostStorage.from_env(bad)
        assert "\n" not in str(info.value) and "AzureWebJobsStorage" in str(info.value)


def test_a_user_assigned_storage_identity_gets_its_own_credential() -> None:
    from azure.identity import ManagedIdentityCredential

    storage = HostStorage.from_env({"AzureWebJobsStorage__accountName": "st",
                                    "AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555"})
    app_credential = object()
    assert isinstance(storage.credential(app_credential), ManagedIdentityCredential)  # type: ignore[arg-type]
    assert HostStorage.from_env({"AzureWebJobsStorage__accountName": "st"}).credential(
        app_credential) is app_credential  # type: ignore[arg-type]


class ScopeRecorder:
    def __init__(self, inner: Any) -> None:
        self.inner, self.scopes = inner, []  # type: ignore[var-annotated]

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.scopes.extend(scopes)
        return self.inner.get_token(*scopes, **kwargs)


@pytest.mark.parametrize("endpoint, scope", [
    ("https://management.azure.com", "https://management.azure.com/.default"),
    ("https://management.usgovcloudapi.net/", "https://management.usgovcloudapi.net/.default"),
    ("https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"),
])
def test_the_arm_token_scope_follows_arm_endpoint(endpoint: str, scope: str) -> None:
    from remediation.azure.clients import AzureClients

    assert AzureClients(object(), arm_endpoint=endpoint)._kwargs()["credential_scopes"] == [scope]  # type: ignore[arg-type]


def test_the_sdk_asks_for_a_token_of_the_configured_endpoint(world: World) -> None:
    from remediation.azure.clients import AzureClients

    recorder = ScopeRecorder(world.sb.credential())
    clients = AzureClients(recorder, arm_endpoint=world.sb.arm_endpoint, verify=world.sb.ca_bundle)  # type: ignore[arg-type]
    list(clients.container_instance(world.scenario.subscriptions[0]).container_groups.list())
    clients.close()
    assert set(recorder.scopes) == {f"{world.sb.arm_endpoint}/.default"}


# --- packaging ----------------------------------------------------------------------------------


def _imported_modules() -> set[str]:
    names: set[str] = set()
    deployed = [p for p in sorted((ROOT / "remediation").rglob("*.py")) if p.name != "demo.py"]  # demo: dev only
    for path in [ROOT / "function_app.py", *deployed]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _distribution_of(module: str, packages: dict[str, str]) -> str | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        found = packages.get(".".join(parts[:n]))
        if found:
            return found
    return None


def test_requirements_hold_exactly_what_the_app_imports() -> None:
    from importlib import metadata

    pinned = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{name} is not pinned"
            pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    packages: dict[str, str] = {}  # import path -> distribution, from each pinned distribution's files
    for dist in pinned:
        for file in metadata.files(dist) or []:
            if file.suffix == ".py" and file.name == "__init__.py" and ".dist-info" not in str(file):
                module = ".".join(file.parent.parts)
                packages.setdefault(module, dist)
            elif file.suffix == ".py" and len(file.parts) == 1:
                packages.setdefault(file.stem, dist)
    local = {"remediation", "function_app"}
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    used: set[str] = set()
    for module in _imported_modules():
        top = module.split(".")[0]
        if top in local or top in stdlib:
            continue
        dist = _distribution_of(module, packages)
        assert dist, f"{module} is imported but no pinned requirement provides it"
        used.add(dist)
    assert set(pinned) == used, f"pinned but never imported: {sorted(set(pinned) - used)}"


def test_funcignore_leaves_out_every_cache_and_development_folder() -> None:
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".funcignore").read_text().splitlines() if line.strip()}
    for folder in ("__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv", ".stamps", "node_modules",
                   "tests", "sandbox", "scenarios", "bench", "infra", "docs", ".azurite"):
        assert folder in ignored or f"**/{folder}" in ignored, folder
