"""A benchmark's result: each figure beside its target, and whether the target was met."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Figure:
    """One measured ``value`` against ``target`` (``value <compare> target``), in ``unit``."""

    name: str
    value: float
    compare: str
    target: float
    unit: str = ""
    reason: str = ""
    """Why the value is what it is, where that is not obvious (a miss names what it measured)."""

    @property
    def met(self) -> bool:
        return _COMPARE[self.compare](self.value, self.target)

    def line(self, benchmark: str) -> str:
        verdict = "PASS" if self.met else "MISS"
        unit = f" {self.unit}" if self.unit else ""
        why = f"  ({self.reason})" if self.reason else ""
        return (f"{verdict} {benchmark}: {self.name} = {_number(self.value)}{unit}, "
                f"target {self.compare} {_number(self.target)}{unit}{why}")


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
