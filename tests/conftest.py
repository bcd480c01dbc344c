from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox import Sandbox


@pytest.fixture
def make_sandbox() -> Iterator[Callable[[dict[str, Any]], Sandbox]]:
    """Start sandboxes for a test from scenario dicts; each is stopped, and checked for bugs, after."""
    started: list[Sandbox] = []

    def start(scenario: dict[str, Any]) -> Sandbox:
        sb = Sandbox(scenario)
        started.append(sb)
        return sb

    yield start
    for sb in started:
        errors = sb.errors()
        sb.stop()
        assert not errors, f"sandbox internal errors: {errors}"


# Azurite (the storage emulator), started once per session for the tests that ask for `azurite`.
# The function app under the genuine Python worker, on a sandbox and Azurite (tests/app.py).
from tests.app import world as world  # noqa: E402
from tests.azurite import azurite as azurite  # noqa: E402
