# maestro-dagster: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test lint format demo dev clean ui ui-check screenshots

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

# Style, the import layers (pyproject's [tool.importlinter]) and the types (pyproject's [tool.mypy]).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

DEMO_REQUIREMENT ?= Build a todo application with user accounts. Users can add tasks. Users can share lists with friends.

demo: setup
	$(BIN)/maestro db upgrade
	$(BIN)/maestro defs sync
	$(BIN)/maestro run sdlc_parallel --requirement "$(DEMO_REQUIREMENT)"
	@echo
	@echo "Query it with SQL (sqlite3 .maestro_home/maestro_workflows.db):"
	@echo "  SELECT id, status, progress_percent FROM workflow_executions ORDER BY created_at DESC LIMIT 5;"
	@echo "  SELECT node_id, status, attempt_count, duration_seconds, quality_score FROM node_states WHERE execution_id = '<id>';"
	@echo "  SELECT id, event_type, node_id, timestamp FROM execution_events WHERE execution_id = '<id>' ORDER BY id;"
	@echo
	@echo "Web UI: \`MAESTRO_API_OPEN=true $(BIN)/maestro api\` (local only: no token), then open http://127.0.0.1:8000/ui"

# The web UI (ui/, built with Node 20 + npm into maestro_dagster/api/ui_dist, which ships in the package: users
# never need Node). `ui-check` fails when the shipped build is not what ui/ builds now (.ci/run runs it).
UI_NPM := cd ui && npm ci --no-audit --no-fund --loglevel=error

ui:
	$(UI_NPM) && npm run build

ui-check:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  ( $(UI_NPM) && npx tsc --noEmit && npx vite build --logLevel error --outDir "$$tmp" --emptyOutDir ) && \
	  if diff -r "$$tmp" maestro_dagster/api/ui_dist >/dev/null; then echo "the shipped UI build is current"; \
	  else echo "maestro_dagster/api/ui_dist is stale: run \`make ui\` and commit it" >&2; diff -r "$$tmp" maestro_dagster/api/ui_dist | head -20 >&2; exit 1; fi

# The README's screenshots of the web UI (docs/images/*.png, 1280x800), taken by the browser tests on the real stack
# (PostgreSQL, dagster-webserver + daemon, `maestro api`; Chromium headless) at the moments they show: commit them.
screenshots: setup
	MAESTRO_UI_SCREENSHOTS=docs/images $(BIN)/pytest tests/api/test_ui_stack.py -q

clean:
	rm -rf $(VENV) .maestro_home .pytest_cache .ruff_cache
