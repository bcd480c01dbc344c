"""The fix kinds: each declared once, in its own module, and everything else derived from the registry."""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import remediation.actions
from remediation.actions import KINDS, FixKind, declare
from remediation.actions.redeploy import REDEPLOY
from remediation.azure.apply import APPLIERS, apply_actions
from remediation.plan import plan
from remediation.policy import Gate, gate
from remediation.settings import Settings
from tests.test_plan import make_ctx, pull_finding

ROOT = Path(__file__).resolve().parents[1]
# CONTRACT.md §2: the action kinds a report may carry, in the order a plan lists them.
CONTRACT_KINDS = ("assign-role", "enable-trusted-services", "propose-definition", "redeploy")


def test_the_registry_holds_the_contracts_kinds_in_plan_order() -> None:
    assert tuple(KINDS) == CONTRACT_KINDS
    assert [k.order for k in KINDS.values()] == sorted(k.order for k in KINDS.values())


def test_every_module_of_the_package_declares_exactly_one_registered_kind() -> None:
    modules = [m.name for m in pkgutil.iter_modules(remediation.actions.__path__)]
    assert len(modules) == len(KINDS)
    for name in modules:
        module = importlib.import_module(f"remediation.actions.{name}")
        declared = [v for v in vars(module).values() if isinstance(v, FixKind)]
        assert len(declared) == 1, f"{name} declares {len(declared)} kinds"
        assert KINDS[declared[0].name] is declared[0]
        assert declared[0].name == name.replace("_", "-")


@pytest.mark.parametrize("clash", [{"name": "assign-role", "order": 99}, {"name": "delete-registry", "order": 10}])
def test_a_second_kind_with_the_same_name_or_order_is_refused(clash: dict[str, Any]) -> None:
    before = dict(KINDS)
    with pytest.raises(ValueError, match="clashes"):
        declare(replace(KINDS["assign-role"], **clash))
    assert before == KINDS


def test_every_writing_kind_but_the_redeploy_has_exactly_one_applier() -> None:
    # the redeploy is its own stage (remediation.azure.redeploy), after every other write
    assert set(APPLIERS) == {k.name for k in KINDS.values() if k.writes} - {REDEPLOY.name}
    assert set(APPLIERS) <= set(KINDS)  # no applier for a kind nobody declared


def test_each_kind_name_is_spelled_only_in_its_declaration() -> None:
    # "redeploy" is also a report key, so only the other names can be searched for as text
    for kind in (k for k in KINDS.values() if k is not REDEPLOY):
        literal = re.compile(rf"[\"']{re.escape(kind.name)}[\"']")
        spelled = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "remediation").rglob("*.py")
                         if literal.search(p.read_text(encoding="utf-8")))
        assert spelled == [f"remediation/actions/{kind.name.replace('-', '_')}.py"]


class _RecordingClients:
    """Stands in for AzureClients: any SDK client asked for is a write attempt."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.asked.append(name)
        raise AssertionError(f"the apply stage asked for the {name} client")


def test_the_apply_stage_writes_only_what_the_gate_allows() -> None:
    ctx = make_ctx()
    planned = plan([pull_finding()], ctx)
    clients = _RecordingClients()
    dry = gate(planned, ctx, Settings(dry_run=True))
    assert [a.status for a in dry.actions] == ["planned", "planned"]
    assert apply_actions(clients, dry) == list(dry.actions)
    refused = Gate(tuple(planned), skip_reason="opted out")
    assert apply_actions(clients, refused) == list(planned)
    assert clients.asked == []
