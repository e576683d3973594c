# Everything installs itself first: a fresh machine needs only Python 3.11+ and git.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000
# This machine's API key for the demo, beside the database it is valid in (both ignored
# by git). Created once by `make run`, shown on the terminal then, never by `serve`.
KEY_FILE := loopdesk.db.api-key

.PHONY: install run api-key test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install api-key
	@echo 'console: http://$(HOST):$(PORT)/ (sign in with the key in $(KEY_FILE): cat $(KEY_FILE))'
	@echo 'try: curl -H "Authorization: Bearer $$(cat $(KEY_FILE))" "http://$(HOST):$(PORT)/v1/customers/lookup?email=primary@email.com&email=secondary@email.com"'
	$(BIN)/loopdesk serve --host $(HOST) --port $(PORT)

api-key:
	@if [ -s $(KEY_FILE) ] && [ -f loopdesk.db ]; then \
	  echo "API key for this machine: in $(KEY_FILE)"; \
	else \
	  umask 077; \
	  $(BIN)/loopdesk keys create "local-$$(hostname)-$$(date +%s)" > $(KEY_FILE).new \
	    && mv $(KEY_FILE).new $(KEY_FILE) || { rm -f $(KEY_FILE).new; exit 1; }; \
	  echo "API key for this machine (kept in $(KEY_FILE); shown only this once): $$(cat $(KEY_FILE))"; \
	fi

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# The suite runs on TEST_WORKERS processes (pytest-xdist); much of it waits on sockets
# and subprocesses, so a third worker on two cores still shortens it. TEST_WORKERS=0
# runs it in this process.
TEST_WORKERS ?= 3

test: install lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

bench: install
	@# wrk (a C load generator) keeps the load generator from being what is measured.
	@# A fresh machine has no package lists yet: install fails until they are fetched.
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null 2>&1 \
	  || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null 2>&1; } \
	  || echo "wrk not installable: using the Python load generator (slower: it caps the figures)"
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
