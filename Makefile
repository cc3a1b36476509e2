# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8001

.PHONY: serve build test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# What running needs: the pinned requirements and the project itself (editable, so the
# command and the site's plugins are this checkout).
$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $@

# What testing needs on top (pytest, playwright, actionlint).
$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Crawl the channels of channels.yml into telegram.db (or, where t.me cannot be reached,
# the fake Telegram's demo channels into demo/telegram.db) and serve it with Datasette.
# `python -m` from the checkout, so that the demo's fake Telegram (devtools/) is found.
serve: $(VENV)/.installed
	$(BIN)/python -m telegram_datasette serve --port $(PORT)

build: $(VENV)/.installed
	$(BIN)/python -m telegram_datasette build

# -rs: the reason for every skipped test.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -rs

# Benchmarks print figures (speed and memory targets live here, not in tests).
bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/rebuild.py
	$(BIN)/python bench/crawl.py
	$(BIN)/python bench/export.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/media.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf build demo telegram.db* archive.db*
