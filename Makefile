# Two commands matter: `make demo` and `make test`. Both set themselves up on a fresh machine
# (a .venv from requirements-dev.txt, the npm dev tools) and are quick when already set up.

PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps

.PHONY: demo test lint typecheck unit bench setup clean

setup: $(STAMPS)/venv $(STAMPS)/npm

$(STAMPS)/venv: requirements.txt requirements-dev.txt
	@mkdir -p $(STAMPS)
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
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

unit: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test: setup lint typecheck unit

bench: $(STAMPS)/venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(STAMPS) node_modules .pytest_cache .mypy_cache .ruff_cache
