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

# Two pytest-xdist workers by default, each with its own test database and Redis db
# (tests/support/xdist_worker.py): the suite takes ~5-7 min instead of ~12 on two cores.
# `make test PYTEST_WORKERS=` runs it in one process (easier to read a failure's output).
PYTEST_WORKERS ?= -n 2

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The benchmarks at a small size (a few minutes; SQLite in a temp dir unless DATABASE_URL is
# set; loopback only). fair_budget, webhook_throughput and multi_merchant need PostgreSQL and
# Redis on loopback (a database of their own, recreated; BENCH_DATABASE_URL/BENCH_REDIS_URL).
# Each prints its figure last, with its target. Figures and the machine they were measured on:
# docs/benchmarks.md. BENCH_N scales the per-return ones.
BENCH_N ?= 100
bench: $(STAMP)
	$(BIN)/python bench/sync_api_economy.py $(BENCH_N)
	$(BIN)/python bench/returngo_calls.py $(BENCH_N) 3
	$(BIN)/python bench/quiet_poll.py 100 1000
	$(BIN)/python bench/fair_budget.py --backlog 300 --webhooks 15 --duration 60
	$(BIN)/python bench/memory.py 100 1000 --new 20
	$(BIN)/python bench/webhook_throughput.py --seconds 4 --rounds 2
	$(BIN)/python bench/multi_merchant.py --merchants 12 --backlog 50 --returns 3
	$(BIN)/python bench/multi_merchant.py --merchants 12 --backlog 50 --returns 3 --kill-after 15

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
