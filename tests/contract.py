"""The cause codes of the public contract (``../shared/CONTRACT.md`` §1), for the tests that hold
the app to it. CI clones the repository beside ``shared/``, as the developers have it."""

from __future__ import annotations

import re
from pathlib import Path

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "CONTRACT.md"


def _causes_section() -> str:
    return CONTRACT.read_text(encoding="utf-8").split("## 1.", 1)[1].split("## 2.", 1)[0]


def cause_table() -> list[str]:
    """The codes of the contract's cause table, in its order."""
    return re.findall(r"^\| `([A-Z_]+)` \|", _causes_section(), re.MULTILINE)


def retired_codes() -> list[str]:
    """The codes the contract lists as retired, in its order."""
    retired = _causes_section().split("Retired codes", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"`([A-Z_]+)`", retired)
