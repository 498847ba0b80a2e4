# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test lint browser migrate demo bench bench-ingest clean bench-train bench-throttle

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# Third-party browser code (htmx) from npm, exactly as package-lock.json pins it; the static
# pipeline serves it from node_modules (settings.STATICFILES_DIRS).
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py demo_setup

## run: install, migrate, create the demo organization and user, start web + worker.
run: demo
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

## browser: Debian's Chromium for the browser tests (Playwright drives it).
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

## lint: ruff (lint + format), the import-linter contracts, the all-tenants allow-list, the
## README's permission table (scripts/permission_table.py) and mypy (see pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/check_all_tenants.py
	$(BIN)/python scripts/permission_table.py --check
	$(BIN)/mypy

## test: lint + the whole suite (unit, API, e2e with a real worker, browser).
test: install browser lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench-train: the portal's training loop vs a bare PyTorch loop -> benchmarks/results/train.json
## (CUDA when present; ARGS="--device cpu", "--batch-size 256", ... are passed on)
bench-train: install
	$(BIN)/python benchmarks/train.py $(ARGS)

## bench-ingest: image ingestion vs a bare Pillow decode loop -> benchmarks/results/ingest.json
bench-ingest: install
	$(BIN)/python benchmarks/ingest.py

## bench-throttle: 50 parallel API requests against a limit of 20 a minute per key, on the real
## web processes -> benchmarks/results/throttle.json
bench-throttle: install
	$(BIN)/python benchmarks/throttle.py $(ARGS)

clean:
	rm -rf var staticfiles .pytest_cache
