"""Every fixture of every format (``tests/preflight_fixtures/<format>/expected.json``) raises exactly the codes
its ``expected.json`` lists, through the command itself; and each format's fixtures cover every offline cause
the format can express (PREFLIGHT.md, "Fixtures")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediation.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "preflight_fixtures"
EXPECTED = sorted(FIXTURES.glob("*/expected.json"))
CASES = [(e.parent.name, name, codes) for e in EXPECTED for name, codes in json.loads(e.read_text()).items()]
DEFINITION_CAUSES = {"ACI_API_VERSION_TOO_OLD", "ACI_CREDENTIAL_AMBIGUOUS", "ACI_IDENTITY_NOT_ATTACHED",
                     "ACI_SYSTEM_IDENTITY_UNSUPPORTED", "ACI_CREDENTIAL_SERVER_MISSING"}
OFFLINE_CAUSES = DEFINITION_CAUSES | {
    "ACR_PULL_PERMISSION_MISSING", "ACR_ABAC_REPOSITORY_PERMISSIONS", "ACR_ABAC_CONDITION_EXCLUDES_REPOSITORY",
    "ACR_TRUSTED_SERVICES_DISABLED", "ACI_PRIVATE_ENDPOINT_IN_DELEGATED_SUBNET", "ACR_PULL_PERMISSION_PROPAGATING"}
COVERAGE = {"containers": DEFINITION_CAUSES, "arm": OFFLINE_CAUSES, "bicep": OFFLINE_CAUSES,
            "terraform": OFFLINE_CAUSES}
"""What each format's fixtures must cover: a container group file declares no registry, identity or role."""


@pytest.mark.parametrize("fmt, name, codes", CASES, ids=[f"{fmt}/{name}" for fmt, name, _ in CASES])
def test_the_fixture_raises_exactly_its_codes(fmt: str, name: str, codes: list[str], tmp_path: Path) -> None:
    path = FIXTURES / fmt / name
    assert path.exists(), f"{path} is listed in expected.json but missing"
    out = tmp_path / "out.json"
    code = main(["preflight", str(path), "--format", "json", "--output", str(out)])
    found = [f["code"] for f in json.loads(out.read_text())["findings"]]
    assert sorted(found) == sorted(codes)
    assert code == (1 if codes else 0)


@pytest.mark.parametrize("fmt", sorted(COVERAGE))
def test_the_fixtures_cover_every_cause_clean_and_broken(fmt: str) -> None:
    expected = FIXTURES / fmt / "expected.json"
    assert expected.exists(), f"{fmt} has no fixtures"
    listed = json.loads(expected.read_text())
    raised = {code for codes in listed.values() for code in codes}
    assert COVERAGE[fmt] <= raised, f"not covered: {sorted(COVERAGE[fmt] - raised)}"
    assert any(codes == [] for codes in listed.values())
    # a broken fixture breaks exactly one thing
    assert all(len(codes) <= 1 for codes in listed.values())
