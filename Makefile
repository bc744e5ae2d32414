# Two commands on a fresh machine (Python 3.11+ and make):
#   make demo   – virtualenv, install, migrate, run the connector (web + worker + beat + sandboxes)
#   make test   – virtualenv, install, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint format clean lock audit bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python manage.py demo $(DEMO_ARGS)

# One process by default. `make test PYTEST_WORKERS="-n 2"` runs two pytest-xdist workers, each
# with its own test database and Redis db (tests/support/xdist_worker.py); not the default until
# it is green twice in CI (on a loaded machine, process start-ups and sleeps ran past bounds).
PYTEST_WORKERS ?=

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The request-economy benchmarks at a small size (a few minutes; SQLite in a temp dir unless
# DATABASE_URL is set; loopback only). webhook_throughput needs PostgreSQL and Redis on loopback
# (its own database, bench_webhook_throughput, recreated; BENCH_DATABASE_URL/BENCH_REDIS_URL). Each prints its figure last, with its floor. Figures and
# the machine they were measured on: docs/benchmarks.md. BENCH_N scales the per-return ones.
BENCH_N ?= 100
bench: $(STAMP)
	$(BIN)/python bench/sync_api_economy.py $(BENCH_N)
	$(BIN)/python bench/returngo_calls.py $(BENCH_N) 3
	$(BIN)/python bench/quiet_poll.py 100 1000
	$(BIN)/python bench/memory.py 100 1000 --new 20
	$(BIN)/python bench/webhook_throughput.py --seconds 4 --rounds 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The deployment lock (the Dockerfile installs exactly this, hash-checked). Run after changing
# [project] dependencies in pyproject.toml; a test fails while the two disagree.
lock: $(STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

# Known vulnerabilities in the locked versions (skips, saying so, where no database is reachable).
audit: $(STAMP)
	BIN=$(BIN) bash .ci/audit

clean:
	rm -rf $(VENV) var .pytest_cache
