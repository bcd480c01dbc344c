# Two commands matter: `make demo` and `make test`. Both set themselves up on a fresh machine
# (a .venv from requirements-dev.txt, the npm dev tools) and are quick when already set up.

PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
# The genuine Azure Functions Python worker's indexing and binding code, for the host conformance
# tests. Its wheel declares Python 3.13+, but it is pure Python with the 4.x worker's rules, so it
# is fetched for 3.13 and installed without its (lazily imported) dependencies.
WORKER_VERSION := 1.3.0
# Test processes (pytest-xdist); each starts its own Azurite and indexes the app once. Four beat
# two on a 2-core machine: the tests wait on loopback HTTP (sandbox, Azurite) more than they compute.
PYTEST_WORKERS ?= 4
# checkov pins dozens of packages that clash with the app's, so it gets its own venv. Its Bicep
# parser (pycep-parser 0.5.1, pinned by checkov) reads no typed arrays (string[]) or lambdas; the
# tests parse with pycep-parser 0.7.1 as well (requirements.txt, for preflight), and this step fails when
# checkov could not parse a file or checked nothing, which checkov itself would report as a pass.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov

.PHONY: demo test lint typecheck bandit checkov unit bench setup clean

setup: $(STAMPS)/venv $(STAMPS)/worker-$(WORKER_VERSION) $(STAMPS)/npm

$(STAMPS)/venv: requirements.txt requirements-dev.txt
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(STAMPS)/worker-$(WORKER_VERSION): $(STAMPS)/venv
	@rm -rf $(STAMPS)/wheels
	$(PY) -m pip download --quiet --disable-pip-version-check --no-deps --python-version 3.13 \
		--only-binary=:all: -d $(STAMPS)/wheels azure-functions-runtime==$(WORKER_VERSION)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python \
		$(STAMPS)/wheels/azure_functions_runtime-$(WORKER_VERSION)-py3-none-any.whl
	@touch $@

$(STAMPS)/checkov-$(CHECKOV_VERSION):
	@mkdir -p $(STAMPS)
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	@touch $@

$(STAMPS)/npm: package.json package-lock.json
	@mkdir -p $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: $(STAMPS)/venv
	$(PY) -m remediation demo $(if $(SCENARIO),--scenario $(SCENARIO),)

lint: $(STAMPS)/venv
	$(PY) -m ruff check remediation sandbox tests function_app.py bench

typecheck: $(STAMPS)/venv
	$(PY) -m mypy --strict remediation function_app.py

# Every finding is fixed, or marked `# nosec <test id>` on its line with the reason after it.
bandit: $(STAMPS)/venv
	$(PY) -m bandit -q -r remediation function_app.py

# Every finding is fixed, or skipped inside its resource with `// checkov:skip=CKV_AZURE_n: reason`.
# --skip-download: no policy or guideline download (and no network) during a test run.
checkov: $(STAMPS)/checkov-$(CHECKOV_VERSION) $(STAMPS)/venv
	$(CHECKOV_VENV)/bin/checkov --framework bicep -d infra --skip-download --quiet --compact \
		-o cli -o json --output-file-path console,$(STAMPS)/checkov.json
	$(PY) -c 'import json, sys; s = json.load(open(sys.argv[1])).get("summary", {}); \
		sys.exit(0 if s.get("parsing_errors") == 0 and s.get("passed", 0) > 0 else f"checkov: {s}")' \
		$(STAMPS)/checkov.json

unit: setup
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test: setup lint typecheck bandit checkov unit

# Every benchmark against its target (bench/README.md); exits 1 when one is missed. Azurite (npm) for
# the storm, replay and memory benchmarks. `make bench BENCH_ARGS=storm` runs one.
bench: $(STAMPS)/venv $(STAMPS)/npm
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(STAMPS) node_modules .pytest_cache .mypy_cache .ruff_cache
