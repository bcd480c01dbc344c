"""The Functions host's side of the worker protocol, for the genuine Python worker.

The Azure Functions host talks to the Python worker over gRPC (``FunctionRpc.proto`` of
azure-functions-language-worker-protobuf). This module builds, at run time, the subset of
those messages that indexing and invocation use, with the proto's own field names and numbers,
and drives the genuine worker (PyPI ``azure-functions-runtime``, the 4.x worker's indexing and
binding code) through its real entry points: ``worker_init_request`` (which imports
``function_app.py`` and indexes it), ``functions_metadata_request`` (what the host receives) and
``invocation_request`` (inputs decoded by the genuine ``azure.functions`` converters, outputs
encoded back). Only the transport is missing: no gRPC stream, no .NET host.

What the host puts on the wire for each trigger is modelled here from the host's documented
behaviour (each cited next to it); everything the worker does with it is the worker's own code.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import types
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES, "bool": _F.TYPE_BOOL, "int32": _F.TYPE_INT32,
            "sint64": _F.TYPE_SINT64, "double": _F.TYPE_DOUBLE, "int64": _F.TYPE_INT64}
_PACKAGE = "AzureFunctionsRpcMessages"  # the proto's package

# message -> fields: (name, number, type, oneof or None); "repeated X" and "map<string,X>" as in the .proto.
_SCHEMA: dict[str, list[tuple[str, int, str, str | None]]] = {
    "TypedData": [("string", 1, "string", "data"), ("json", 2, "string", "data"), ("bytes", 3, "bytes", "data"),
                  ("stream", 4, "bytes", "data"), ("http", 5, "RpcHttp", "data"), ("int", 6, "sint64", "data"),
                  ("double", 7, "double", "data"), ("collection_bytes", 8, "CollectionBytes", "data"),
                  ("collection_string", 9, "CollectionString", "data")],
    "CollectionString": [("string", 1, "repeated string", None)],
    "CollectionBytes": [("bytes", 1, "repeated bytes", None)],
    "RpcHttpCookie": [("name", 1, "string", None), ("value", 2, "string", None)],
    "RpcHttp": [("method", 1, "string", None), ("url", 2, "string", None),
                ("headers", 3, "map<string,string>", None), ("body", 4, "TypedData", None),
                ("params", 10, "map<string,string>", None), ("status_code", 12, "string", None),
                ("query", 15, "map<string,string>", None), ("enable_content_negotiation", 16, "bool", None),
                ("rawBody", 17, "TypedData", None), ("cookies", 19, "repeated RpcHttpCookie", None)],
    "ParameterBinding": [("name", 1, "string", None), ("data", 2, "TypedData", "rpc_data")],
    "BindingInfo": [("type", 2, "string", None), ("direction", 3, "enum Direction", None),
                    ("data_type", 4, "enum DataType", None), ("properties", 5, "map<string,string>", None)],
    "RpcException": [("stack_trace", 1, "string", None), ("message", 2, "string", None),
                     ("source", 3, "string", None), ("is_user_exception", 4, "bool", None),
                     ("type", 5, "string", None)],
    "StatusResult": [("status", 4, "enum Status", None), ("result", 1, "string", None),
                     ("exception", 2, "RpcException", None)],
    "RpcRetryOptions": [("max_retry_count", 2, "int32", None)],
    "RpcFunctionMetadata": [("name", 4, "string", None), ("directory", 1, "string", None),
                            ("script_file", 2, "string", None), ("entry_point", 3, "string", None),
                            ("bindings", 6, "map<string,BindingInfo>", None), ("is_proxy", 7, "bool", None),
                            ("status", 8, "StatusResult", None), ("language", 9, "string", None),
                            ("raw_bindings", 10, "repeated string", None), ("function_id", 13, "string", None),
                            ("managed_dependency_enabled", 14, "bool", None),
                            ("retry_options", 15, "RpcRetryOptions", None),
                            ("properties", 16, "map<string,string>", None)],
    "FunctionMetadataResponse": [("function_metadata_results", 1, "repeated RpcFunctionMetadata", None),
                                 ("result", 2, "StatusResult", None),
                                 ("use_default_metadata_indexing", 3, "bool", None)],
    "WorkerMetadata": [("runtime_name", 1, "string", None), ("runtime_version", 2, "string", None),
                       ("worker_version", 3, "string", None), ("worker_bitness", 4, "string", None),
                       ("custom_properties", 5, "map<string,string>", None)],
    "WorkerInitResponse": [("worker_version", 1, "string", None), ("capabilities", 2, "map<string,string>", None),
                           ("result", 3, "StatusResult", None), ("worker_metadata", 4, "WorkerMetadata", None)],
    "RpcTraceContext": [("trace_parent", 1, "string", None), ("trace_state", 2, "string", None),
                        ("attributes", 3, "map<string,string>", None)],
    "RetryContext": [("retry_count", 1, "int32", None), ("max_retry_count", 2, "int32", None),
                     ("exception", 3, "RpcException", None)],
    "InvocationRequest": [("invocation_id", 1, "string", None), ("function_id", 2, "string", None),
                          ("input_data", 3, "repeated ParameterBinding", None),
                          ("trigger_metadata", 4, "map<string,TypedData>", None),
                          ("trace_context", 5, "RpcTraceContext", None), ("retry_context", 6, "RetryContext", None)],
    "InvocationResponse": [("invocation_id", 1, "string", None), ("output_data", 2, "repeated ParameterBinding", None),
                           ("result", 3, "StatusResult", None), ("return_value", 4, "TypedData", None)],
    "WorkerInitRequest": [("host_version", 1, "string", None), ("capabilities", 2, "map<string,string>", None),
                          ("function_app_directory", 5, "string", None)],
}
_ENUMS = {"BindingInfo": {"Direction": ["in", "out", "inout"], "DataType": ["undefined", "string", "binary", "stream"]},
          "StatusResult": {"Status": ["Failure", "Success", "Cancelled"]}}


def _build_protos() -> types.SimpleNamespace:
    file = descriptor_pb2.FileDescriptorProto(name="host_subset_FunctionRpc.proto", package=_PACKAGE,
                                              syntax="proto3")
    for name, fields in _SCHEMA.items():
        msg = file.message_type.add(name=name)
        for enum_name, values in _ENUMS.get(name, {}).items():
            enum = msg.enum_type.add(name=enum_name)
            for number, value in enumerate(values):
                enum.value.add(name=value, number=number)
        oneofs: list[str] = []
        for field_name, number, kind, oneof in fields:
            field = msg.field.add(name=field_name, number=number, label=_F.LABEL_OPTIONAL)
            if oneof is not None:
                if oneof not in oneofs:
                    oneofs.append(oneof)
                    msg.oneof_decl.add(name=oneof)
                field.oneof_index = oneofs.index(oneof)
            if kind.startswith("map<"):
                key, value = kind[4:-1].split(",")
                entry = msg.nested_type.add(name="".join(p.title() for p in field_name.split("_")) + "Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, type=_SCALARS[key])
                value_field = entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL)
                _set_type(value_field, value)
                field.label = _F.LABEL_REPEATED
                field.type = _F.TYPE_MESSAGE
                field.type_name = f".{_PACKAGE}.{name}.{entry.name}"
                continue
            if kind.startswith("repeated "):
                field.label = _F.LABEL_REPEATED
                kind = kind[len("repeated "):]
            if kind.startswith("enum "):
                field.type = _F.TYPE_ENUM
                field.type_name = f".{_PACKAGE}.{name}.{kind[5:]}"
            else:
                _set_type(field, kind)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    classes = message_factory.GetMessageClassesForFiles([file.name], pool)
    return types.SimpleNamespace(**{name: classes[f"{_PACKAGE}.{name}"] for name in _SCHEMA})


def _set_type(field: Any, kind: str) -> None:
    if kind in _SCALARS:
        field.type = _SCALARS[kind]
    else:
        field.type = _F.TYPE_MESSAGE
        field.type_name = f".{_PACKAGE}.{kind}"


protos = _build_protos()


@dataclass(frozen=True)
class Invocation:
    """What the worker answered: the outputs it encoded, the return value, and the status."""

    response: Any

    @property
    def ok(self) -> bool:
        return bool(self.response.result.status == protos.StatusResult.Success)

    @property
    def error(self) -> str:
        return str(self.response.result.exception.message)

    def output(self, name: str) -> Any:
        """The output binding's value as the worker put it on the wire (None when unset)."""
        for binding in self.response.output_data:
            if binding.name == name:
                return typed_value(binding.data)
        return None

    @property
    def http(self) -> tuple[int, Any]:
        """(status, parsed JSON body) of an HTTP function's return value."""
        http = self.response.return_value.http
        body = typed_value(http.body)
        return int(http.status_code), json.loads(body) if body else None


def typed_value(data: Any) -> Any:
    kind = data.WhichOneof("data")
    return None if kind is None else getattr(data, kind)


class Host:
    """One worker process as the host starts it: init (indexing), metadata, then invocations."""

    def __init__(self, app_directory: Path) -> None:
        from azure_functions_runtime import handle_event
        from azure_functions_runtime.utils import threadpool

        self._events = handle_event
        # One event loop, as in the worker: invocations from many threads are awaited on it, and
        # sync functions run concurrently in the worker's own thread pool.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="worker-loop", daemon=True)
        self._thread.start()
        threadpool.start_threadpool_executor()
        request = types.SimpleNamespace(
            request=types.SimpleNamespace(worker_init_request=protos.WorkerInitRequest(
                function_app_directory=str(app_directory), host_version="4.1040.0")),
            properties={"host": "127.0.0.1", "protos": protos})
        self.init_response = self._run(handle_event.worker_init_request(request))
        metadata = self._run(handle_event.functions_metadata_request(types.SimpleNamespace()))
        self.metadata = {m.name: m for m in metadata.function_metadata_results}

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @property
    def init_ok(self) -> bool:
        return bool(self.init_response.result.status == protos.StatusResult.Success)

    @property
    def init_error(self) -> str:
        return str(self.init_response.result.exception.message)

    def raw_bindings(self, function: str) -> list[dict[str, Any]]:
        """The bindings the host reads for ``function`` (its function.json, as the worker sends it)."""
        return [json.loads(b) for b in self.metadata[function].raw_bindings]

    def trigger(self, function: str) -> dict[str, Any]:
        return next(b for b in self.raw_bindings(function) if b["type"].endswith("Trigger"))

    def invoke(self, function: str, inputs: Mapping[str, Any], *,
               trigger_metadata: Mapping[str, Any] | None = None) -> Invocation:
        """Invoke ``function`` with ``inputs`` (binding name -> TypedData) the way the host does."""
        meta = self.metadata[function]
        request = protos.InvocationRequest(
            invocation_id=str(uuid.uuid4()), function_id=meta.function_id,
            input_data=[protos.ParameterBinding(name=name, data=data) for name, data in inputs.items()],
            trigger_metadata=dict(trigger_metadata or {}),
            trace_context=protos.RpcTraceContext(trace_parent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"),
            retry_context=protos.RetryContext(retry_count=0, max_retry_count=0))
        wrapped = types.SimpleNamespace(request=types.SimpleNamespace(invocation_request=request))
        return Invocation(self._run(self._events.invocation_request(wrapped)))

    def close(self) -> None:
        """Stop this host's loop (the worker's thread pool is per process and stays)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


# -- what the host puts on the wire, per trigger ---------------------------------------------------

def event_grid_delivery(event: Mapping[str, Any]) -> Any:
    """One event of an Event Grid delivery: the host's Event Grid extension splits the delivered
    array and invokes the function once per element, passing the element's JSON text as
    ``json`` TypedData (the converter in azure-functions, ``EventGridEventInConverter.decode``,
    accepts only that type). The same holds for CloudEvents 1.0 deliveries."""
    return protos.TypedData(json=json.dumps(event))


def queue_delivery(message_text: str, *, dequeue_count: int = 1,
                   message_id: str | None = None) -> tuple[Any, dict[str, Any]]:
    """A queue-triggered invocation: the host base64-decodes the stored message (the default
    ``messageEncoding`` of the queues extension) and passes the text as ``string`` TypedData, with
    the trigger metadata ``Id``, ``DequeueCount``, ``PopReceipt``, ``InsertionTime``,
    ``ExpirationTime`` and ``NextVisibleTime`` (read by ``QueueMessageInConverter.decode``)."""
    metadata = {
        "Id": protos.TypedData(string=message_id or str(uuid.uuid4())),
        "DequeueCount": protos.TypedData(json=str(dequeue_count)),
        "PopReceipt": protos.TypedData(string="AgAAAAMAAAAAAAAA"),
        "InsertionTime": protos.TypedData(json=json.dumps("2026-12-01T10:00:00+00:00")),
        "ExpirationTime": protos.TypedData(json=json.dumps("2026-12-08T10:00:00+00:00")),
        "NextVisibleTime": protos.TypedData(json=json.dumps("2026-12-01T10:00:30+00:00")),
    }
    return protos.TypedData(string=message_text), metadata


def queue_stored(output_value: Any) -> str:
    """What the queue output binding stores for a value the worker encoded: base64 of UTF-8."""
    text = output_value if isinstance(output_value, str) else bytes(output_value).decode()
    return base64.b64encode(text.encode()).decode()


def http_request(method: str, path: str, *, body: bytes = b"", query: Mapping[str, str] | None = None,
                 route_params: Mapping[str, str] | None = None,
                 headers: Mapping[str, str] | None = None) -> Any:
    """An HTTP-triggered invocation as the host sends it to a worker that declared
    ``RpcHttpBodyOnly`` and ``RawHttpBodyBytes``: the body as bytes, route values in ``params``."""
    url = f"https://func-remediator.azurewebsites.net/api/{path}"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return protos.TypedData(http=protos.RpcHttp(
        method=method, url=url, headers=dict(headers or {"content-type": "application/json"}),
        body=protos.TypedData(bytes=body), params=dict(route_params or {}), query=dict(query or {})))


def timer_tick(*, past_due: bool = False) -> Any:
    """A timer tick: the host sends the TimerInfo as JSON (``TimerRequestConverter.decode``)."""
    return protos.TypedData(json=json.dumps({
        "Schedule": {"AdjustForDST": True}, "IsPastDue": past_due,
        "ScheduleStatus": {"Last": "2026-12-01T03:30:00+00:00", "Next": "2026-12-02T03:30:00+00:00",
                           "LastUpdated": "2026-12-01T03:30:00+00:00"}}))
