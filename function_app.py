"""Triggers and bindings only; everything they do lives in ``remediation.service``.

Each trigger parameter is annotated with exactly one class: the Python worker refuses any other
annotation when it indexes the app (``A | B`` included), and then the host loads no function.
The Event Grid trigger takes ``str``, the event's JSON exactly as it was delivered (Event Grid
schema or CloudEvents 1.0), because the ``EventGridEvent`` converter drops ``metadataVersion``,
CloudEvents extension attributes and the precision of ``eventTime``.

The service (and through it the Azure SDKs) is imported on first use, so the worker indexes the
app without loading them, and ``health`` never does.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import azure.functions as func

if TYPE_CHECKING:
    from remediation.service import Service

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger("remediation.functions")  # under "remediation": each record one line (remediation.logs)
JOBS_QUEUE = "%REMEDIATION_JOBS_QUEUE%"
POISON_QUEUE = "%REMEDIATION_JOBS_QUEUE%-poison"  # the queues extension's name for messages it gave up on


def _service() -> Service:
    from remediation.service import get_service

    return get_service()


def _json(status: int, body: object) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@app.event_grid_trigger(arg_name="event")
@app.queue_output(arg_name="jobs", queue_name=JOBS_QUEUE, connection="AzureWebJobsStorage")
def on_resource_write_failure(event: str, jobs: func.Out[str]) -> None:
    """A failed container-group write: queue the remediation (Event Grid wants an answer within 30 s)."""
    message = _service().job_for_event(event)
    if message is not None:
        jobs.set(message)


@app.queue_trigger(arg_name="msg", queue_name=JOBS_QUEUE, connection="AzureWebJobsStorage")
def run_remediation_job(msg: func.QueueMessage) -> None:
    """The remediation itself; a transient failure raises so the queue redelivers."""
    from remediation.service import TransientFailure

    try:
        _service().process_message(msg.get_body().decode("utf-8"), dequeue_count=msg.dequeue_count or 1)
    except TransientFailure as exc:
        log.warning("remediation will be retried: %s", exc)
        raise


@app.queue_trigger(arg_name="msg", queue_name=POISON_QUEUE, connection="AzureWebJobsStorage")
def on_poisoned_job(msg: func.QueueMessage) -> None:
    """A job the queue gave up on: its failure is stored and notified, never silent."""
    _service().process_poisoned(msg.get_body().decode("utf-8"))


@app.route(route="replay", methods=["POST"])
def replay(req: func.HttpRequest) -> func.HttpResponse:
    answer = _service().replay(req.get_body(), query=dict(req.params))
    return _json(answer.status, answer.body)


@app.route(route="remediations/{id}", methods=["GET"])
def get_remediation(req: func.HttpRequest) -> func.HttpResponse:
    answer = _service().remediation(req.route_params.get("id", ""))
    return _json(answer.status, answer.body)


@app.route(route="remediations", methods=["GET"])
def list_remediations(req: func.HttpRequest) -> func.HttpResponse:
    answer = _service().remediations_for(req.params.get("resourceId"))
    return _json(answer.status, answer.body)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health_check(req: func.HttpRequest) -> func.HttpResponse:
    from remediation.health import health

    return _json(200, health())


@app.timer_trigger(arg_name="timer", schedule="0 30 3 * * *", run_on_startup=False)
def purge_ledger(timer: func.TimerRequest) -> None:
    """Daily: reports and ledger rows older than REMEDIATION_RETENTION_DAYS are removed."""
    _service().purge()


@app.timer_trigger(arg_name="timer", schedule="%REMEDIATION_SWEEP_SCHEDULE%", run_on_startup=False)
def sweep(timer: func.TimerRequest) -> None:
    """Off unless REMEDIATION_SWEEP_ENABLED: find groups whose next pull would fail, and fix them."""
    reports = _service().sweep()
    log.info("sweep finished: %d container group(s) needed attention", len(reports))
