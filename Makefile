# attnwatch: `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DURATION ?= 120
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test unit lint system-deps clean

# torch first: the pinned CPU build lies on this machine's disk; a looser spec
# resolved by pip would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/attnwatch --log-format console --log-level WARNING demo --duration $(DURATION)

# PostgreSQL (initdb/pg_ctl) for the store tests; installed if missing, never skipped.
system-deps:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing PostgreSQL server binaries for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

test: install system-deps lint
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit -m "not integration"

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
