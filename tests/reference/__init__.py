"""Real ARM and Event Grid payloads, copied from the project's shared reference (see samples/SOURCES.md).

Kept in the repository so the tests need nothing outside the clone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parent / "samples"


def sample(name: str) -> Any:
    """A sample parsed as JSON (``.jsonc`` files lose their trailing commas first)."""
    text = (SAMPLES / name).read_text(encoding="utf-8")
    if name.endswith(".jsonc"):
        text = re.sub(r",(\s*[}\]])", r"\1", text)
    return json.loads(text)
