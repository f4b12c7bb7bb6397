# fraudstream: `make run` starts the whole system, `make test` runs every test.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
# Debian packages the system needs: Java for Kafka, Maven to fetch Kafka's jars, PostgreSQL, Chromium for UI tests.
DEBIAN_PACKAGES := openjdk-17-jre-headless maven postgresql chromium

.PHONY: install system-deps run up down status test test-fast test-faults lint format clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Installs the Debian packages that are missing (needs root or sudo); a no-op when all are there.
system-deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# SECURE=1: Kafka SASL_SSL with ACLs, PostgreSQL TLS, logins (README, Security).
SECURE_FLAG := $(if $(filter 1 yes true,$(SECURE)),--secure)

run: system-deps install
	$(BIN)/fraudstream run $(SECURE_FLAG)

up: system-deps install
	$(BIN)/fraudstream up $(SECURE_FLAG)

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

test: system-deps install lint
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not integration and not fault and not browser and not slow"

test-faults: system-deps install
	$(BIN)/pytest -m fault

clean:
	rm -rf .data logs
