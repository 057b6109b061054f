PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint demo bench validators clean

setup: $(STAMP)

# compileall: bytecode even under PYTHONDONTWRITEBYTECODE, so `looks` starts ~0.15 s sooner. A
# stale .pyc is never used (its source's mtime is checked): Python recompiles that module.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q engine
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check engine tests bench
	$(BIN)/ruff format --check engine tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

demo: setup
	$(BIN)/python -m looks.demo

bench: setup
	$(BIN)/python bench/run_all.py

# fastjsonschema's code for the schemas (engine/_schemas.py): after changing schemas/ or the
# fastjsonschema version (tests/test_schemas_code.py says when).
validators: setup
	$(BIN)/python -c 'from looks._schemas import write_validators; write_validators()'

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
