"""``preflight --format sarif``: SARIF 2.1.0 that validates against the OASIS schema
(``tests/specs/sarif-schema-2.1.0.json``, oasis-tcs/sarif-spec ``Schemata/sarif-schema-2.1.0.json`` at commit
0a8091f7d4057e57b6d8d9b56129e5f918747b34), with each cause code named once as a rule."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from remediation.__main__ import main
from remediation.checks import DOCUMENTS, all_checks
from remediation.preflight.checks import check_definitions
from remediation.preflight.model import Definitions, Location
from remediation.preflight.output import Result, artifact_uri, sarif
from tests.test_preflight import FILE, assignment, group, identity, registry

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "specs" / "sarif-schema-2.1.0.json").read_text())
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
FIXTURES = ROOT / "tests" / "preflight_fixtures" / "containers"


def _log(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "preflight.sarif"
    main(["preflight", *args, "--format", "sarif", "--output", str(out)])
    return dict(json.loads(out.read_text()))


def test_the_validator_is_the_schemas_own_draft_and_really_checks() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert isinstance(VALIDATOR, jsonschema.Draft4Validator)
    type(VALIDATOR).check_schema(SCHEMA)
    assert len(SCHEMA["definitions"]) == 52


def test_the_fixtures_log_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    log = _log(tmp_path, "tests/preflight_fixtures/containers")
    VALIDATOR.validate(log)
    [run] = log["runs"]
    assert run["results"] and run["invocations"][0]["toolExecutionNotifications"]  # expected.json was passed over


@pytest.mark.parametrize("break_it", [
    lambda log: log.pop("version"),
    lambda log: log["runs"][0]["results"][0].update(level="fatal"),
    lambda log: log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"].update(startLine=0),
    lambda log: log["runs"][0]["results"][0].pop("message"),
    lambda log: log["runs"][0]["tool"]["driver"].pop("name"),
    lambda log: log["runs"][0]["tool"]["driver"]["rules"][0].update(shortDescription="not an object"),
    lambda log: log["runs"][0]["results"][0].update(extra=True),
])
def test_a_broken_log_fails_validation(tmp_path: Path, break_it: Any) -> None:
    log = _log(tmp_path, str(FIXTURES / "server-missing-broken.yaml"))
    VALIDATOR.validate(log)
    broken = copy.deepcopy(log)
    break_it(broken)
    assert list(VALIDATOR.iter_errors(broken))


def test_each_cause_is_one_rule_with_its_document_and_results_point_at_theirs() -> None:
    definitions = Definitions(FILE, "bicep", (registry(), identity(), assignment(), group(after=()),
                                              group("second", after=())))
    outcome = check_definitions(definitions)
    log = sarif(Result((definitions,), outcome.findings, outcome.notes), cwd=Path.cwd())
    VALIDATOR.validate(log)
    driver = log["runs"][0]["tool"]["driver"]
    ids = [r["id"] for r in driver["rules"]]
    assert len(ids) == len(set(ids)) == len(all_checks())
    for rule, check in zip(driver["rules"], all_checks(), strict=True):
        assert rule["helpUri"] == DOCUMENTS[check.source].url and rule["shortDescription"]["text"]
    results = log["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["ACR_PULL_PERMISSION_PROPAGATING"] * 2
    for result in results:
        assert ids[result["ruleIndex"]] == result["ruleId"] and result["level"] == "error"
        assert result["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": FILE},
                                                              "region": {"startLine": 20}}


def test_locations_are_relative_to_the_current_directory(tmp_path: Path) -> None:
    inside = tmp_path / "infra dir" / "main.json"
    assert artifact_uri(str(inside), tmp_path) == "infra%20dir/main.json"
    assert artifact_uri(str(inside), tmp_path / "elsewhere").startswith("file:///")


def test_a_finding_without_a_line_has_no_region(tmp_path: Path) -> None:
    definitions = Definitions(FILE, "bicep", (registry(), identity(), group(after=())))
    outcome = check_definitions(definitions)
    finding = outcome.findings[0]
    lineless = type(finding)(**{**finding.__dict__, "location": Location(FILE)})
    log = sarif(Result((definitions,), (lineless,), ()), cwd=Path.cwd())
    VALIDATOR.validate(log)
    assert "region" not in log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
