# Pynomaly — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LISTEN ?= 127.0.0.1:50051
HTTP_LISTEN ?= 127.0.0.1:8000
STORE ?= var/store
ENGINE ?= embedded
LOAD_TIME ?= 60
LOAD_USERS ?= 10
LOAD_OUT ?= var/load
PROTOS := $(wildcard proto/pynomaly/v1/*.proto) proto/pynomaly/oip/v2/grpc_service.proto
# Where the stubs of PROTOS land (committed), each compared with a fresh generation by proto-check.
STUBS := pynomaly/v1 pynomaly/oip/v2

.DEFAULT_GOAL := help
.PHONY: help setup run run-ray test test-browser console-screenshots bench-console test-clients test-interop lint proto proto-check stubs-check buf-lint bench bench-batch bench-first bench-memory bench-oip bench-peers bench-ray bench-workers perf-readme parity automl-labels load clean fuzz audit soak chart-docs detectors-doc

help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The web console's assets (services/console: htmx, Vega-Lite, vega-embed, Tailwind CSS; all from the npm registry),
# built into services/pynomaly/web/console/static/ (git-ignored). npm ci when the lock changes; the build again when
# the stylesheet's source, build.mjs or a template changes (Tailwind takes the class names from the templates).
CONSOLE := services/console
CONSOLE_TEMPLATES := services/pynomaly/web/console/templates
CONSOLE_MODULES := $(CONSOLE)/node_modules/.package-lock.json
CONSOLE_ASSETS := services/pynomaly/web/console/static/vendor/.built
NPM_MISSING := npm not found: the web console's assets need Node.js and npm (Debian: apt-get install nodejs npm)

$(CONSOLE_MODULES): $(CONSOLE)/package-lock.json $(CONSOLE)/package.json
	@command -v npm >/dev/null || { echo "$(NPM_MISSING)" >&2; exit 1; }
	cd $(CONSOLE) && npm ci --silent --no-audit --no-fund

$(CONSOLE_ASSETS): $(CONSOLE_MODULES) $(CONSOLE)/src/console.css $(CONSOLE)/build.mjs \
		$(wildcard $(CONSOLE_TEMPLATES) $(CONSOLE_TEMPLATES)/*.html)
	@command -v npm >/dev/null || { echo "$(NPM_MISSING)" >&2; exit 1; }
	cd $(CONSOLE) && npm run --silent build
	touch $(CONSOLE_ASSETS)

setup: $(STAMP) $(CONSOLE_ASSETS) ## create .venv, install the pinned dependencies, build the web console's assets

run: setup ## start the embedded platform on $(LISTEN), REST on $(HTTP_LISTEN) (store: $(STORE))
	$(VENV)/bin/pynomaly serve --listen $(LISTEN) --http-listen $(HTTP_LISTEN) --store $(STORE)

# The suite runs in a network namespace with only loopback, so nothing it starts (Ray binds every interface) is
# reachable from outside: `unshare -n` as root, `unshare -rn` as a user where user namespaces are allowed. Where
# neither works (or iproute2's ip is missing) the suite runs as is, and the Ray engine tests are skipped with the
# reason.
NETNS := $(shell command -v ip >/dev/null || exit 0; if unshare -n true 2>/dev/null; then echo "unshare -n"; \
	elif unshare -rn true 2>/dev/null; then echo "unshare -rn"; fi)
ISOLATED = $(if $(NETNS),$(NETNS) sh -c 'ip link set lo up && exec "$$0" "$$@"',)

run-ray: setup ## start the platform on a private Ray cluster (Ray Serve replicas), on $(LISTEN)
	RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/pynomaly serve --engine ray --listen $(LISTEN) --http-listen $(HTTP_LISTEN) \
		--store $(STORE)

# The interop tests' clients are installed before the suite enters its namespace, which reaches no registry:
# tritonclient in an environment of its own (it pins protobuf < 7; benchmarks/tritonclient_env.py), and the Node.js
# client's packages from the npm registry (tests/node; without npm the Node test says how to get it).
NODE_MODULES := tests/node/node_modules/.package-lock.json
$(NODE_MODULES): tests/node/package-lock.json
	@if command -v npm >/dev/null; then cd tests/node && npm ci --silent --no-audit --no-fund; \
	else echo "npm not found: the Node.js client test cannot run (Debian: apt-get install nodejs npm)" >&2; fi

test-clients: setup $(NODE_MODULES) ## install the interop tests' clients: tritonclient's own venv, tests/node's packages
	$(PY) -m benchmarks.tritonclient_env >/dev/null

# TensorFlow, tf2onnx, JAX and jax2onnx (pyproject's `interop` extra) in .venv-interop/, never in .venv: about 2.5 GB,
# which the server needs none of (tests/interop/interop_env.py). Not part of `make test`, whose users need not
# download it; CI runs it after make test (about 3 minutes: docs/interop.md).
test-interop: setup ## only the bring-your-own-model tests: Keras (tf2onnx) and JAX (jax2onnx) models imported and explained
	$(PY) tests/interop/interop_env.py >/dev/null
	RAY_USAGE_STATS_ENABLED=0 $(ISOLATED) $(PY) -m pytest -q -m interop tests/interop $(PYTEST_ARGS)

# The suites that start no server (the unit tests, the dataset parity and AutoML accuracy suites: CPU-bound fits and
# graphs) run in TEST_WORKERS processes, one file per process at a time (pytest-xdist --dist loadfile: the export
# cases' fits stay cached within a file); the server suites run after them in one process, each session's servers
# (embedded and Ray) started once.
# The largest files first (each 150-250 s of CPU), the unit tests' many small files after them: xdist hands the files
# out in this order, so the small ones even out the two workers' ends (the other order left one worker idle for
# minutes: 720 s against about 550).
TEST_WORKERS ?= 2
SERVERLESS := tests/integration/test_every_detector.py tests/integration/test_parity.py \
	tests/integration/test_automl_datasets.py tests/unit

# A PYTEST_ARGS selection (-k, -m) may leave one part with no test: pytest's exit status 5 there is not a failure.
test: setup test-clients ## run the test suite (both engines), inside a loopback-only network namespace
	RAY_USAGE_STATS_ENABLED=0 $(ISOLATED) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(SERVERLESS) \
		$(PYTEST_ARGS) || [ $$? -eq 5 ]
	RAY_USAGE_STATS_ENABLED=0 $(ISOLATED) $(PY) -m pytest -q $(addprefix --ignore=,$(SERVERLESS) tests/interop) \
		$(PYTEST_ARGS) || [ $$? -eq 5 ]

test-browser: setup ## only the web console's browser tests (tests/browser: Playwright with Debian's chromium)
	$(ISOLATED) $(PY) -m pytest -q tests/browser $(PYTEST_ARGS)

# The README's pictures of the console: the browser suite's model card and scored file at 1280×900, written where
# PYNOMALY_SCREENSHOTS points (tests/browser/test_console.py).
console-screenshots: setup ## the README's console screenshots: docs/images/console-model-card.png, console-score.png
	$(ISOLATED) env PYNOMALY_SCREENSHOTS=docs/images $(PY) -m pytest -q tests/browser/test_console.py \
		-k test_score_a_file $(PYTEST_ARGS)

lint: setup ## ruff, mypy (the core and the API layer), bandit (high), the stubs-match-proto check and buf lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -r services operators -x $(BANDIT_SKIP) --severity-level high
	$(MAKE) proto-check buf-lint

# Generated stubs are not ours to audit.
BANDIT_SKIP := services/pynomaly/v1,services/pynomaly/oip/v2
FUZZ_TIME ?= 300

fuzz: setup ## fuzz request decoding and the first checks with atheris for FUZZ_TIME seconds (crashes land in var/fuzz)
	mkdir -p var/fuzz/corpus
	$(PY) tests/fuzz/fuzz_requests.py var/fuzz/corpus -max_total_time=$(FUZZ_TIME) -artifact_prefix=var/fuzz/

audit: setup ## bandit over the code (any severity listed, high fails) and pip-audit of the pinned dependencies
	$(VENV)/bin/bandit -r services operators -x $(BANDIT_SKIP) --severity-level high
	$(VENV)/bin/pip-audit --local --skip-editable --strict --progress-spinner off

# The descriptors with their comments (source info), which Python's generated stubs leave out: reflection serves
# these, so `grpcurl describe` shows the documentation (pynomaly/server/reflection.py).
DESCRIPTORS := pynomaly/v1/descriptors.binpb

proto: setup ## regenerate the stubs (services/pynomaly/v1, services/pynomaly/oip/v2) and descriptors from proto/
	$(PY) -m grpc_tools.protoc -I proto --python_out=services --pyi_out=services --grpc_python_out=services $(PROTOS)
	$(PY) -m grpc_tools.protoc -I proto --include_source_info --descriptor_set_out=services/$(DESCRIPTORS) $(PROTOS)

proto-check: setup ## fail if the committed stubs differ from proto/
	@tmp=$$(mktemp -d); \
	$(PY) -m grpc_tools.protoc -I proto --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTOS); \
	$(PY) -m grpc_tools.protoc -I proto --include_source_info --descriptor_set_out=$$tmp/$(DESCRIPTORS) $(PROTOS); \
	for stubs in $(STUBS); do \
		if ! diff -r -x __init__.py -x __pycache__ $$tmp/$$stubs services/$$stubs; then \
			echo "stubs differ from proto/: run 'make proto' and commit" >&2; rm -rf $$tmp; exit 1; fi; \
	done; echo "stubs match proto/"; rm -rf $$tmp

# Go and Java stubs generated from proto/ into a temporary directory (never committed), the Java ones compiled: the
# language options work with the stock generators. The tools come from Debian (.ci/run installs them); missing
# ones fail here, naming the packages.
stubs-check: setup ## generate Go and Java stubs from proto/ in a temp dir (not kept), compile them, run the Go client
	PYNOMALY_REQUIRE_STUBS=1 $(PY) -m pytest -q -p no:cacheprovider tests/unit/test_client_stubs.py \
		tests/integration/test_go_client.py

chart-docs: setup ## write each chart's README.md from the `# --` comments of its values.yaml
	$(PY) -m charts.helm_docs $(patsubst %/Chart.yaml,%,$(wildcard charts/*/Chart.yaml))

detectors-doc: setup ## write docs/detectors.md (every detector, how it is served or why not) from the registry
	$(PY) -m pynomaly.algorithms.catalog > docs/detectors.md.tmp && mv docs/detectors.md.tmp docs/detectors.md

buf-lint: ## buf lint (STANDARD) over proto/, with buf from npm
	@test -x .tools/node_modules/.bin/buf || npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1.75.0
	cd proto && ../.tools/node_modules/.bin/buf lint

bench: setup ## ONNX vs native PyOD, Detect vs echo RPC, then bench-batch, -console, -memory: ratios from one run
	$(PY) -m benchmarks.bench --markdown benchmarks/results/bench.md
	$(PY) -m benchmarks.batch_bench
	$(PY) -m benchmarks.console_bench
	$(PY) -m benchmarks.memory_bench --markdown benchmarks/results/memory.md

bench-memory: setup ## the server's RSS (whole process tree): warmed, at rest (worker retired), 20 models loaded
	$(PY) -m benchmarks.memory_bench --markdown benchmarks/results/memory.md

bench-workers: setup ## serve --workers 1 vs 2: 1-row Detect calls/s under the same load of client processes
	$(PY) -m benchmarks.workers_bench --markdown benchmarks/results/workers.md

perf-readme: setup ## copy the tables the benchmarks wrote (benchmarks/results/) into the README's Performance section
	$(PY) -m benchmarks.readme_results

bench-batch: setup ## a batch job (1M rows x 20, IForest, Parquet) vs native PyOD; server peak RSS at 1M and 4M rows
	$(PY) -m benchmarks.batch_bench

bench-first: setup ## time to first detection: `pynomaly serve` on an empty store → train → detect, fresh CLIs
	$(PY) -m benchmarks.first_detection

bench-console: setup ## the web console with a 100k-row file: upload + score, first page (< 200 ms), sort, explain, CSV
	$(PY) -m benchmarks.console_bench

bench-oip: setup ## OIP v2 via tritonclient (gRPC, REST) vs native Detect: 1-row p50, 8-thread calls/s, 1k-row rows/s
	$(PY) -m benchmarks.oip_bench

bench-peers: setup ## Pynomaly vs MLServer 1.7.1, one IsolationForest, tritonclient (OIP gRPC): p50, rows/s, calls/s, RSS
	$(PY) -m benchmarks.peers --markdown benchmarks/results/peers.md $(PEERS_ARGS)

bench-ray: setup ## Detect via the Ray engine vs a bare Ray Serve echo vs embedded; Ray memory
	RAY_USAGE_STATS_ENABLED=0 $(ISOLATED) $(PY) -m benchmarks.ray_bench

DATASETS ?= ../shared/datasets
parity: setup ## every exportable detector × the 12 ADBench sets, then "auto" vs single detectors: parity-results/
	$(PY) -m benchmarks.parity --datasets $(DATASETS) --out parity-results; status=$$?; \
	$(PY) -m benchmarks.automl --datasets $(DATASETS) --out parity-results && exit $$status

automl-labels: setup ## "auto" with labels (its search) vs single detectors on the 12 ADBench sets: parity-results/
	$(PY) -m benchmarks.automl --labels --datasets $(DATASETS) --out parity-results

load: setup ## Locust vs a server on 127.0.0.1: LOAD_USERS=10 users, LOAD_TIME=60 s, ENGINE=embedded|ray; reports in LOAD_OUT
	RAY_USAGE_STATS_ENABLED=0 $(if $(filter ray,$(ENGINE)),$(ISOLATED)) $(PY) load_tests/run.py --engine $(ENGINE) --time $(LOAD_TIME) --users $(LOAD_USERS) --out $(LOAD_OUT)

SOAK_TIME ?= 600
soak: setup ## Locust at 80% of the measured top rate for SOAK_TIME s vs the embedded server: 0 errors, RSS growth < 5%
	$(PY) load_tests/soak.py --time $(SOAK_TIME) --out var/soak

clean: ## remove the venv and local model store
	rm -rf $(VENV) .venv-tritonclient .venv-interop var
