"""Triggers and bindings only; everything they do lives in ``remediation.service``."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from remediation.service import TransientFailure, get_service, health

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
JOBS_QUEUE = "%REMEDIATION_JOBS_QUEUE%"


def _json(status: int, body: object) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def _event_payload(event: func.EventGridEvent | func.CloudEvent) -> dict[str, object]:
    """The event as it was on the wire; the worker hands a CloudEvent for a CloudEvents subscription."""
    if isinstance(event, func.CloudEvent):
        return {"specversion": event.specversion, "id": event.id, "source": event.source, "type": event.type,
                "subject": event.subject, "time": event.time.isoformat() if event.time else None,
                "data": event.get_json()}
    return {
        "id": event.id, "topic": event.topic, "subject": event.subject, "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "dataVersion": event.data_version, "metadataVersion": "1", "data": event.get_json(),
    }


@app.event_grid_trigger(arg_name="event")
@app.queue_output(arg_name="jobs", queue_name=JOBS_QUEUE, connection="AzureWebJobsStorage")
def on_resource_write_failure(event: func.EventGridEvent | func.CloudEvent, jobs: func.Out[str]) -> None:
    """A failed container-group write: queue the remediation (Event Grid wants an answer within 30 s)."""
    job = get_service().job_for_event(_event_payload(event))
    if job is not None:
        jobs.set(json.dumps(job))


@app.queue_trigger(arg_name="msg", queue_name=JOBS_QUEUE, connection="AzureWebJobsStorage")
def run_remediation_job(msg: func.QueueMessage) -> None:
    """The remediation itself; a transient failure raises so the queue redelivers."""
    try:
        get_service().process_job(msg.get_json(), dequeue_count=msg.dequeue_count or 1)
    except TransientFailure as exc:
        logging.warning("remediation will be retried: %s", exc)
        raise


@app.route(route="replay", methods=["POST"])
@app.queue_output(arg_name="jobs", queue_name=JOBS_QUEUE, connection="AzureWebJobsStorage")
def replay(req: func.HttpRequest, jobs: func.Out[str]) -> func.HttpResponse:
    answer = get_service().replay(req.get_body(), dry_run_param=req.params.get("dryRun"), enqueue=jobs.set)
    return _json(answer.status, answer.body)


@app.route(route="remediations/{id}", methods=["GET"])
def get_remediation(req: func.HttpRequest) -> func.HttpResponse:
    answer = get_service().remediation(req.route_params.get("id", ""))
    return _json(answer.status, answer.body)


@app.route(route="remediations", methods=["GET"])
def list_remediations(req: func.HttpRequest) -> func.HttpResponse:
    answer = get_service().remediations_for(req.params.get("resourceId"))
    return _json(answer.status, answer.body)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health_check(req: func.HttpRequest) -> func.HttpResponse:
    return _json(200, health())


@app.timer_trigger(arg_name="timer", schedule="0 30 3 * * *", run_on_startup=False)
def purge_ledger(timer: func.TimerRequest) -> None:
    """Daily: reports and ledger rows older than REMEDIATION_RETENTION_DAYS are removed."""
    get_service().purge()


@app.timer_trigger(arg_name="timer", schedule="%REMEDIATION_SWEEP_SCHEDULE%", run_on_startup=False)
def sweep(timer: func.TimerRequest) -> None:
    """Off unless REMEDIATION_SWEEP_ENABLED: find groups whose next pull would fail, and fix them."""
    reports = get_service().sweep()
    logging.info("sweep finished: %d container group(s) needed attention", len(reports))
