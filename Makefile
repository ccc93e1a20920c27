# Two entry points (see README): `make demo` runs the quickstart, `make test` runs the tests.
# Each creates its own virtual environment on first use; PYTHON picks the interpreter.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TEST_EXTRAS := dev,postgres,mysql,kubernetes,pipeline,dashboard,mlflow
DEMO_DIR ?= .demo
PYTEST_ARGS ?=
# `make test` spreads the tests over this many processes (pytest-xdist); `auto`: one per
# core. PYTEST_ARGS comes after it, so `make test PYTEST_ARGS="-n0 tests/x.py::test_y"` runs
# one test serially in this process (where a debugger works).
TEST_WORKERS ?= auto

.PHONY: demo test fuzz proto lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per set of extras, so `make demo` stays light and `make test` adds the test tools.
$(VENV)/.installed-core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(TEST_EXTRAS)]'
	touch $@ $(VENV)/.installed-core

demo: $(VENV)/.installed-core
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(BIN)/tuner run examples/quickstart.yaml --db sqlite:///$(DEMO_DIR)/tuner.db \
		--run-dir $(DEMO_DIR)/runs --output $(DEMO_DIR)/result.json

# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest ran no tests: failing" >&2; exit 1; fi; exit $$rc

# The fuzzing suite (tests/fuzz) runs in `make test` with its bounded `ci` profile; here with
# the `fuzz` profile: 25 times the inputs per test (about half an hour on two cores).
fuzz: $(VENV)/.installed-test
	TUNER_FUZZ_PROFILE=fuzz $(BIN)/python -m pytest tests/fuzz $(PYTEST_ARGS)

proto: $(VENV)/.installed-test
	PYTHON=$(BIN)/python bash scripts/gen_proto.sh

# ruff, then the import layers of docs/architecture.md (contracts in pyproject.toml).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy tuner suggestion tests

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
