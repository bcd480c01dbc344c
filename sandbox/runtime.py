"""Start and stop a sandbox: a TLS server on 127.0.0.1 with a CA made for this run."""

from __future__ import annotations

import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trustme

from . import surfaces  # noqa: F401  (registers every route)
from .eventgrid import Subscriber, stop_dispatcher
from .scenario import Scenario, parse_scenario
from .server import SandboxHTTPServer
from .surfaces.registry_data import UNNAMED_REMEDIATOR
from .tokens import SandboxCredential
from .world import World

USER_PRINCIPAL = "11111111-1111-1111-1111-111111111111"
"""Object id of "the user" who deploys container groups in scenarios."""


class Sandbox:
    """A running sandbox. Use as a context manager, or call :meth:`stop`.

    ``arm_endpoint`` and ``ca_bundle`` are what any client needs; :meth:`credential` makes a
    token credential for a principal, so the sandbox knows who is calling.
    """

    def __init__(self, scenario: Scenario | dict[str, Any], *, port: int = 0, state_dir: str | None = None) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else parse_scenario(scenario)
        self.world = World(self.scenario)
        self._dir = Path(state_dir or tempfile.mkdtemp(prefix="azure-sandbox-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_bundle = str(self._dir / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_bundle)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._httpd = SandboxHTTPServer(("127.0.0.1", port), self.world)
        self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self.arm_endpoint = f"https://127.0.0.1:{self.port}"
        self.world.behaviour.setdefault("armEndpoint", self.arm_endpoint)
        # serve_forever checks for shutdown every poll_interval (0.5 s by default): stop() waited that long
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="azure-sandbox", daemon=True)
        self._thread.start()

    # -- who is calling -----------------------------------------------------------------------

    def credential(self, principal_id: str = USER_PRINCIPAL, **claims: Any) -> SandboxCredential:
        return SandboxCredential(principal_id, self.world.tenant_id, **claims)

    def deployer_credential(self) -> SandboxCredential:
        """The credential of the scenario's deployer (the sandbox's user unless it names another)."""
        return self.credential(self.world.deployer or USER_PRINCIPAL)

    def remediator_credential(self) -> SandboxCredential:
        pid = self.world.remediator or UNNAMED_REMEDIATOR
        return self.credential(pid)

    def registry_endpoint(self, login_server: str) -> str:
        """The data-plane endpoint that stands for ``https://<login_server>``."""
        return f"{self.arm_endpoint}/registries/{login_server.lower()}"

    # -- Event Grid ---------------------------------------------------------------------------

    def subscribe(self, target: Callable[[Any], None] | str, *, schema: str = "EventGridSchema",
                  included_event_types: list[str] | None = None,
                  subject_begins_with: str | None = None) -> Subscriber:
        """Deliver ARM events to a callable or an HTTP(S) URL, in Event Grid or CloudEvents schema."""
        sub = Subscriber(target=target, schema=schema, included_event_types=included_event_types,
                         subject_begins_with=subject_begins_with)
        with self.world.lock:
            self.world.subscribers.append(sub)
        return sub

    # -- lifecycle ----------------------------------------------------------------------------

    def errors(self) -> list[str]:
        """Internal sandbox errors (bugs) seen so far; tests assert this stays empty."""
        return list(self._httpd.errors)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        stop_dispatcher(self.world)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *args: object) -> None:
        self.stop()
