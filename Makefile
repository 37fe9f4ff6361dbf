# The README's two commands: `make demo` and `make test`. Each bootstraps .venv from nothing.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
WORKDIR ?= .synth
BIN := $(VENV)/bin

.PHONY: demo test lint bench ui clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/synth-assets init --workdir $(WORKDIR) --config synth.yaml
	$(BIN)/synth-assets demo --workdir $(WORKDIR) --config synth.yaml

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/dagster definitions validate -m synth_assets.definitions
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.installed
	$(BIN)/python bench/generate.py

# The reports are served on 127.0.0.1:3001 (the UI links them there: browsers refuse file://).
ui: $(VENV)/.installed
	mkdir -p $(WORKDIR)/runs
	$(BIN)/python -m http.server 3001 --bind 127.0.0.1 --directory $(WORKDIR)/runs >/dev/null 2>&1 & \
	srv=$$!; trap 'kill $$srv' EXIT INT TERM; \
	SYNTH_REPORT_BASE_URL=http://127.0.0.1:3001 SYNTH_WORKDIR=$(WORKDIR) \
	DAGSTER_HOME=$(abspath $(WORKDIR))/dagster_home $(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) $(WORKDIR) .pytest_cache
