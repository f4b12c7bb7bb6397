# fraudstream: `make run` starts the whole system, `make test` runs every test.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
# Debian packages the system needs: Java for Kafka, Maven to fetch Kafka's jars, PostgreSQL, Chromium for UI tests.
DEBIAN_PACKAGES := openjdk-17-jre-headless maven postgresql chromium

.PHONY: install mlflow-server system-deps run up down status test test-fast test-faults lint format clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# The MLflow server's own virtualenv: `mlflow` pins pyarrow < 26, which the product's virtualenv (the
# client, mlflow-skinny, only) need not downgrade to. psycopg 3: its PostgreSQL store under SQLAlchemy 2.
MLFLOW_VENV    ?= .venv-mlflow
MLFLOW_VERSION := 3.17.2
$(MLFLOW_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(MLFLOW_VENV)/bin/pip install --quiet 'mlflow==$(MLFLOW_VERSION)' 'psycopg[binary]>=3.2,<4'
	touch $@

mlflow-server: $(MLFLOW_VENV)/.installed

# Installs the Debian packages that are missing (needs root or sudo); a no-op when all are there.
system-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

run: system-deps install mlflow-server
	$(BIN)/fraudstream run

up: system-deps install mlflow-server
	$(BIN)/fraudstream up

down: install
	$(BIN)/fraudstream down

status: install
	$(BIN)/fraudstream status

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

test: system-deps install mlflow-server lint
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not integration and not fault and not browser and not slow"

test-faults: system-deps install
	$(BIN)/pytest -m fault

clean:
	rm -rf .data logs
