# The two commands of the README: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8001

.PHONY: serve build test bench clean fast-parser

# The parser's compiled fast path. Optional: without a C compiler the build says so and
# scripts/parse.py alone gives the same records, more slowly.
FAST_PARSER := scripts/_fastparse$(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

# Crawl the channels of channels.yml (or, where t.me cannot be reached, the fake
# Telegram's demo channel), build telegram.db, and serve it with Datasette.
serve: build
	$(BIN)/datasette serve --immutable telegram.db \
		--metadata build/metadata.json --plugins-dir plugins --template-dir templates \
		--setting sql_time_limit_ms 3000 --setting max_returned_rows 1000 --setting suggest_facets off \
		--host 127.0.0.1 --port $(PORT)

$(FAST_PARSER): scripts/_fastparse.pyx $(BIN)/activate
	$(BIN)/python -m scripts build-parser

fast-parser: $(FAST_PARSER)

build: $(BIN)/activate $(FAST_PARSER)
	$(BIN)/python -m scripts build

test: $(BIN)/activate $(FAST_PARSER)
	$(BIN)/python -m pytest -q

# Benchmarks print figures (speed and memory targets live here, not in tests).
bench: $(BIN)/activate $(FAST_PARSER)
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/crawl.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/serve.py

clean:
	rm -rf build telegram.db* archive.db*
