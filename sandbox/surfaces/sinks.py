"""Where summaries land in the sandbox: a Teams Workflows webhook, a Slack incoming webhook, a
generic webhook, and an Event Grid topic, each recording what it was sent.

- ``POST /sinks/teams``: answers 202 like a Workflows "When a Teams webhook request is received" trigger.
- ``POST /sinks/slack``: answers 200 ``ok`` like a Slack incoming webhook.
- ``POST /sinks/webhook``: answers 204.
- ``POST /sinks/eventgrid/api/events``: an Event Grid topic; needs the ``aeg-sas-key`` header
  (any value the scenario's ``behaviour.topicKey`` names, ``sandbox-topic-key`` by default) or a
  bearer token, else 401 like Event Grid.
"""

from __future__ import annotations

import json
from typing import Any

from ..server import ArmError, Request, Response, route


def _record(req: Request, channel: str) -> None:
    try:
        body: Any = json.loads(req.raw_body or b"null")
    except ValueError:
        body = req.raw_body.decode("utf-8", "replace")
    with req.world.lock:
        req.world.sink_posts.append({"channel": channel, "headers": dict(req.headers), "body": body,
                                     "bytes": len(req.raw_body)})


@route("POST", "/sinks/{channel}", arm=False)
def chat_sink(req: Request) -> Response:
    channel = req.params["channel"].lower()
    if channel not in ("teams", "slack", "webhook"):
        raise ArmError(404, "NotFound", f"no sink named {channel!r}")
    _record(req, channel)
    if channel == "teams":
        return Response(202, None)
    if channel == "slack":
        return Response(200, b"ok", {"Content-Type": "text/plain"})
    return Response(204, None)


@route("POST", "/sinks/eventgrid/api/events", arm=False)
def topic_sink(req: Request) -> Response:
    key = req.header("aeg-sas-key")
    expected = str(req.world.behaviour.get("topicKey", "sandbox-topic-key"))
    if key != expected and not (req.header("authorization") or "").lower().startswith("bearer "):
        raise ArmError(401, "Unauthorized", "The request authorization key is not authorized for this topic.")
    _record(req, "eventgrid")
    return Response(200, None)
