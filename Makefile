# Two commands on a fresh machine: `make up` runs the cluster, `make test` runs the tests.
# Both create the virtual environment in .venv/ when it is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

WORKERS ?= 2
# Gateway processes sharing the gateway's port (SO_REUSEPORT; services/gateway/group.py).
GATEWAYS ?= 1
MODE ?= processes
POOL ?= 0
# auto: Docker if it answers, else podman when `make up ENGINE=podman` set it up, else local
# processes. ENGINE=podman installs podman and builds the images where needed (cached).
ENGINE ?= auto
PYTEST_ARGS ?=

.PHONY: help venv prereqs up down ps status logs test test-docker test-unit lint format clean

help:
	@echo "make up [WORKERS=N] [MODE=blocking|threads|processes] [POOL=P]  start the cluster"
	@echo "        [GATEWAYS=N]                                               gateway processes on one port"
	@echo "        [ENGINE=auto|docker|podman|local]                          where it runs"
	@echo "        [RUNTIME=ft|ft-gil] [PYTHON=path] [MODE=interpreters]      workers on another Python"
	@echo "make python-ft [PYTHON_FT_VERSION=3.13]                            build free-threaded CPython"
	@echo "make down | ps | logs                                             stop / list / follow it"
	@echo "make test                                                          all tests"
	@echo "make test-docker                                                   integration tests, servers in containers"
	@echo "make lint                                                          ruff and mypy"
	@echo "make compare | compare-quick                                       measure the claims (10 / 2 min)"
	@echo "make load [LOAD_USERS=N LOAD_TIME=30s LOAD_MIX=...] | load-ui     Locust against the running cluster"
	@echo "make bench | bench-gateway                                         throughput, latency, memory"
	@echo "make soak [SOAK_TIME=10m]                                          state stays bounded under load"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

up: $(STAMP)
	$(BIN)/cluster up --workers $(WORKERS) --gateways $(GATEWAYS) --mode $(MODE) --pool $(POOL) \
		--engine $(ENGINE) $(RUNTIME_OPTS)

down: $(STAMP)
	$(BIN)/cluster down --engine $(ENGINE)

ps status: $(STAMP)
	$(BIN)/cluster status --engine $(ENGINE)

logs: $(STAMP)
	$(BIN)/cluster logs --follow --engine $(ENGINE)

# What the tests need beyond Python packages (servers, browser, Compose): installed and
# started by one script, the same one CI goes through.
prereqs:
	bash deploy/prereqs/install.sh

test: $(STAMP) prereqs
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-docker

# The integration tests again, against RabbitMQ and Redis that pytest-docker starts from
# tests/docker-compose.yml: the path a user with Docker takes. Without Docker, podman's
# private socket stands in for this pass only (DOCKER_HOST is set for pytest alone).
test-docker: $(STAMP) prereqs
	$(BIN)/python -m coordctl.podman run -- $(BIN)/python -m pytest tests/integration -p no:cacheprovider $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services shared deploy/coordctl loadtests
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache

# Load tests (loadtests/): Locust against the running cluster; reports in reports/load/.
LOAD_USERS ?= 20
LOAD_SPAWN ?= 10
LOAD_TIME ?= 30s
LOAD_MIX ?= cpu,io,mixed
LOAD_SHAPE ?= constant
LOAD_HOST ?=
LOAD_ARGS ?=
LOAD_OPTS = --users $(LOAD_USERS) --spawn-rate $(LOAD_SPAWN) --mix $(LOAD_MIX) \
	--shape $(LOAD_SHAPE) $(if $(LOAD_HOST),--host $(LOAD_HOST))

.PHONY: load load-ui bench-gateway

load: $(STAMP)
	$(BIN)/python -m loadtests.run headless $(LOAD_OPTS) --run-time $(LOAD_TIME) -- $(LOAD_ARGS)

load-ui: $(STAMP)
	$(BIN)/python -m loadtests.run ui $(LOAD_OPTS) -- $(LOAD_ARGS)

bench-gateway: $(STAMP)
	$(BIN)/python -m loadtests.bench_gateway $(BENCH_ARGS)

.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -m loadtests.bench $(BENCH_ARGS)

# The soak: a mixed load at 60% of capacity for SOAK_TIME; every sampled series must stay flat.
SOAK_TIME ?= 10m
SOAK_ARGS ?=

.PHONY: soak
soak: $(STAMP)
	$(BIN)/python -m loadtests.soak --time $(SOAK_TIME) $(SOAK_ARGS)

.PHONY: compare compare-quick

compare: $(STAMP)
	$(BIN)/cluster compare

compare-quick: $(STAMP)
	$(BIN)/cluster compare --quick

# Other runtimes for the workers (deploy/runtimes/): a free-threaded CPython built from Debian's
# source package into ~/.cache/coord-cluster/python (once), and .venv-ft under it.
# `make up RUNTIME=ft` runs the workers there (GIL off), RUNTIME=ft-gil the same binary with
# PYTHON_GIL=1; `make up PYTHON=path` any interpreter that has the worker's dependencies.
RUNTIME ?=
PYTHON_FT_VERSION ?= 3.13
export PYTHON_FT_VERSION
RUNTIME_OPTS = $(if $(RUNTIME),--runtime $(RUNTIME)) \
	$(if $(filter command line,$(origin PYTHON)),--python $(PYTHON))

# It also builds the GIL build of the same source (another few minutes, once): the baseline
# `make compare` measures the free-threaded build's single-thread cost against.
.PHONY: python-ft
python-ft:
	bash deploy/runtimes/python_ft.sh
	bash deploy/runtimes/python_ft.sh gil
