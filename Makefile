# fraudstream: `make run` starts the whole system, `make test` runs every test.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
# Debian packages: Java for Kafka, Maven to fetch Kafka's jars, PostgreSQL; the tests also drive Chromium.
RUN_PACKAGES  := openjdk-17-jre-headless maven postgresql
TEST_PACKAGES := $(RUN_PACKAGES) chromium

.PHONY: install mlflow-server quix-peer system-deps test-deps run up down status test test-fast test-faults lint format clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# A virtualenv of its own in the folder of the target ($(@D)), with the packages $(1), for a tool whose
# pins the product's virtualenv need not follow.
define side_venv
	$(PYTHON) -m venv $(@D)
	$(@D)/bin/pip install --quiet --upgrade pip
	$(@D)/bin/pip install --quiet $(1)
	touch $@
endef

# The MLflow server's own virtualenv: `mlflow` pins pyarrow < 26, which the product's virtualenv (the
# client, mlflow-skinny, only) need not downgrade to. psycopg 3: its PostgreSQL store under SQLAlchemy 2.
MLFLOW_VENV    ?= .venv-mlflow
MLFLOW_VERSION := 3.17.2
MLFLOW_PACKAGES := 'mlflow==$(MLFLOW_VERSION)' 'psycopg[binary]>=3.2,<4'
$(MLFLOW_VENV)/.installed: Makefile
	$(call side_venv,$(MLFLOW_PACKAGES))

mlflow-server: $(MLFLOW_VENV)/.installed

# The bench's Quix Streams peer (src/fraudstream/ops/peers/quix_app.py) in a virtualenv of its own:
# quixstreams pins confluent-kafka < 2.13 and pydantic < 2.14, older than the product's.
QUIX_VENV    ?= .venv-quix
QUIX_VERSION := 3.28.1
QUIX_PACKAGES := 'quixstreams==$(QUIX_VERSION)' 'catboost>=1.2.7'
$(QUIX_VENV)/.installed: Makefile
	$(call side_venv,$(QUIX_PACKAGES))

quix-peer: $(QUIX_VENV)/.installed

# Installs the Debian packages of $(1) that are missing (needs root or sudo); a no-op when all are there.
define install_missing
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
endef

system-deps:
	$(call install_missing,$(RUN_PACKAGES))

test-deps:
	$(call install_missing,$(TEST_PACKAGES))

# SECURE=1: Kafka SASL_SSL with ACLs, PostgreSQL TLS, logins (README, Security).
SECURE_FLAG := $(if $(filter 1 yes true,$(SECURE)),--secure)
# BROKERS=3: a local three-broker Kafka cluster (README, Quick start); unset: FRAUDSTREAM_KAFKA_BROKERS, 1.
BROKERS_FLAG := $(if $(BROKERS),--brokers $(BROKERS))

run: system-deps install mlflow-server
	$(BIN)/fraudstream run $(SECURE_FLAG) $(BROKERS_FLAG)

up: system-deps install mlflow-server
	$(BIN)/fraudstream up $(SECURE_FLAG) $(BROKERS_FLAG)

down: install
	$(BIN)/fraudstream down

status: install
	$(BIN)/fraudstream status $(SECURE_FLAG) $(BROKERS_FLAG)

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

test: test-deps install mlflow-server quix-peer lint
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not integration and not fault and not browser and not slow"

test-faults: system-deps install
	$(BIN)/pytest -m fault

clean:
	rm -rf .data logs
