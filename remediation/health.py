"""``GET /api/health``: liveness only; no settings, no secrets, no Azure calls, no SDK imports."""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"


def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}
