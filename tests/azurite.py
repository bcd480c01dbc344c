"""A real Azurite (the Azure Storage emulator) for the tests: blob, queue and table on free ports.

The session-scoped :func:`azurite` fixture (registered in ``tests/conftest.py``) starts one
Azurite per test session from ``node_modules/.bin/azurite`` (installed by ``make setup``), with
in-memory storage, run from a temporary directory, waits until its ports accept connections, yields an
:class:`AzuriteInstance` and stops it at the end. Tests share the instance, so each test should
use its own table, container or queue names.
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO / "node_modules" / ".bin" / "azurite"
ACCOUNT_NAME = "devstoreaccount1"
# Azurite's fixed, publicly documented development key; not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT_SECONDS = 30.0
HOST = "127.0.0.1"


@dataclass(frozen=True)
class AzuriteInstance:
    """A running Azurite; ``connection_string`` is what the storage SDKs' ``from_connection_string`` take."""

    blob_port: int
    queue_port: int
    table_port: int
    location: str

    @property
    def blob_endpoint(self) -> str:
        return f"http://{HOST}:{self.blob_port}/{ACCOUNT_NAME}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://{HOST}:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def table_endpoint(self) -> str:
        return f"http://{HOST}:{self.table_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )


class AzuriteError(RuntimeError):
    """Azurite is not installed, or did not start."""


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open until every port is chosen, so the same port is not handed out twice.
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _check_installed() -> None:
    if not AZURITE_BIN.exists():
        raise AzuriteError(f"{AZURITE_BIN} is missing: run `make setup` (npm ci installs Azurite) before the tests")
    if shutil.which("node") is None:
        raise AzuriteError("node is not on PATH: Azurite needs Node.js; install it and run `make setup`")


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, be sent SIGTERM when the test process dies, even by SIGKILL."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Azurite:
    """Start and stop one Azurite process (``start`` retries on fresh ports if a port was taken meanwhile)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.instance: AzuriteInstance | None = None

    def start(self, attempts: int = 3) -> AzuriteInstance:
        _check_installed()
        problem = ""
        for _ in range(attempts):
            problem = self._try_start()
            if not problem:
                assert self.instance is not None
                return self.instance
            self.stop()
        raise AzuriteError(f"Azurite did not start: {problem}")

    def _try_start(self) -> str:
        blob, queue, table = _free_ports(3)
        log_path = self.workdir / "azurite.log"
        cmd = [
            str(AZURITE_BIN), "--silent", "--loose", "--skipApiVersionCheck", "--disableTelemetry",
            "--inMemoryPersistence",  # cwd is the temp dir, so nothing is written elsewhere
            "--blobHost", HOST, "--queueHost", HOST, "--tableHost", HOST,
            "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table),
        ]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                cmd, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        waiting = [blob, queue, table]
        while waiting:
            if self.process.poll() is not None:
                return f"it exited with status {self.process.returncode}:\n{_tail(log_path)}"
            if time.monotonic() > deadline:
                return f"ports {waiting} not open after {START_TIMEOUT_SECONDS:.0f} s:\n{_tail(log_path)}"
            waiting = [p for p in waiting if not _accepts(p)]
            if waiting:
                time.sleep(0.1)
        self.instance = AzuriteInstance(blob, queue, table, str(self.workdir))
        return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteInstance]:
    """One Azurite for the whole session; fails (never skips) when it is not installed."""
    workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
    server = Azurite(workdir)
    try:
        instance = server.start()
    except AzuriteError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(str(exc), pytrace=False)
    try:
        yield instance
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
