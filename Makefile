# lienthong: `make demo` runs the main flow on real local services; `make test` runs the suite.
# Both set up everything themselves (virtualenv, packages, Kafka jars, PostgreSQL cluster).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LIENTHONG := $(BIN)/lienthong
PYTEST_ARGS ?=

.PHONY: demo test test-secure lint unit integration up down status bench bench-quick bench-secure clean prereqs help promtool

help:
	@echo "make demo   - start Kafka and PostgreSQL here and run the seed scenario end to end"
	@echo "make test   - lint (ruff, mypy) and the whole test suite on real services"
	@echo "make test-secure - the same suite on the 3-node TLS+ACL Kafka cluster"
	@echo "make lint | unit | integration | up | down | status | bench | bench-quick | bench-secure | clean"
	@echo "make promtool - build promtool with Go, so the tests also run the alert rules' unit tests"

prereqs:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ not found: install python3 (3.11 or newer) and python3-venv"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { echo "Python 3.11+ required, found $$($(PYTHON) --version 2>&1): install python3.11 or newer (or set PYTHON=...)"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { echo "Python's venv module is missing: install python3-venv"; exit 1; }
	@command -v java >/dev/null || [ -n "$$JAVA_HOME" ] || [ -n "$$LIENTHONG_KAFKA_BOOTSTRAP" ] || { echo "Java 17+ not found: install openjdk-17-jre-headless (or set LIENTHONG_KAFKA_BOOTSTRAP)"; exit 1; }
	@command -v mvn >/dev/null || [ -n "$$LIENTHONG_KAFKA_BOOTSTRAP" ] || ls $${XDG_CACHE_HOME:-$$HOME/.cache}/lienthong/kafka-*/libs/.complete >/dev/null 2>&1 || { echo "Maven not found (needed once to fetch the Kafka jars): install maven (or set LIENTHONG_KAFKA_BOOTSTRAP)"; exit 1; }
	@[ -n "$$LIENTHONG_DATABASE_URL" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || [ -n "$$LIENTHONG_PG_BIN" ] || { echo "PostgreSQL 15+ server binaries not found: install postgresql (apt-get install -y postgresql), or set LIENTHONG_DATABASE_URL"; exit 1; }

$(STAMP): pyproject.toml | prereqs
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(LIENTHONG) demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

# Lint and the unit tests (CPU-bound, no services) run beside the integration tests (which
# spend most of their time waiting on Kafka and PostgreSQL): the two cores are used at once,
# and the run ends in the time of the longer half. Their output follows the integration run's.
test: $(STAMP)
	@mkdir -p .lienthong
	@( $(MAKE) --no-print-directory lint && $(BIN)/pytest -m "not integration" $(PYTEST_ARGS) ) \
		> .lienthong/unit-tests.log 2>&1 & unit=$$!; \
	$(BIN)/pytest -m integration $(PYTEST_ARGS); integration=$$?; \
	wait $$unit; units=$$?; \
	echo "--- lint and unit tests (run beside the integration tests): .lienthong/unit-tests.log ---"; \
	cat .lienthong/unit-tests.log; \
	echo "integration: exit $$integration; lint and unit: exit $$units"; \
	[ $$integration -eq 0 ] && [ $$units -eq 0 ]

# The whole suite on the 3-node TLS + client-certificate + ACL cluster instead of the single
# plaintext broker (tests/conftest.py; about 25 minutes here).
test-secure: $(STAMP) lint
	LIENTHONG_TEST_BUS=secure $(BIN)/pytest $(PYTEST_ARGS)

up: $(STAMP)
	$(LIENTHONG) infra up

down: $(STAMP)
	$(LIENTHONG) infra down

status: $(STAMP)
	$(LIENTHONG) infra status

# Benchmarks on the real local broker and database (docs/benchmarks.md): baseline, pipeline,
# archive, audit, signing and codec in one run, then the 3-node cluster plaintext beside TLS+ACL
# (bench.secure); writes bench/results/latest.json and secure-latest.json.
bench: $(STAMP)
	$(LIENTHONG) infra up
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.secure

bench-quick: $(STAMP)
	$(LIENTHONG) infra up
	$(BIN)/python -m bench.run --quick

# The raw Kafka baseline on 3 nodes, plaintext beside TLS + client certificates + ACLs; starts
# and stops its own clusters (docs/benchmarks.md); writes bench/results/secure-latest.json.
bench-secure: $(STAMP)
	$(BIN)/python -m bench.secure

# promtool checks infra/deploy/prometheus/alerts.yml and runs alerts.test.yml (the unit tests
# skip that part without it). Built from the Go module proxy into $(VENV)/bin: a few minutes.
PROMTOOL_VERSION ?= v0.316.0
promtool: $(STAMP)
	@command -v go >/dev/null || { echo "Go not found: install golang (1.24+) to build promtool"; exit 1; }
	GOBIN=$(abspath $(BIN)) go install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

clean:
	-@[ -x $(LIENTHONG) ] && $(LIENTHONG) infra down
	rm -rf .lienthong .pytest_cache .mypy_cache .ruff_cache
