# Two commands do everything on a fresh machine:
#   make run   install, create/migrate the SQLite store, seed the demo city, simulate, serve :8050
#   make test  install, check PostgreSQL and Redis, lint, type-check, run every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEBS   := chromium chromium-driver fonts-noto-cjk poppler-utils
PYTEST_ARGS ?=
# The fast tier: what needs no PostgreSQL, no Redis and no browser (tests/conftest.py marks
# the others), and nothing marked slow. PostgreSQL and Redis are pointed at a closed port
# for it, so that a test that reaches one anyway fails at once instead of passing here and
# failing on a machine without them.
FAST_MARKS := not pg and not redis and not browser and not slow
NO_SERVICES := TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:9/postgres TEST_REDIS_URL=redis://127.0.0.1:9/0 \
	CHROMIUM_PATH=/nonexistent/chromium

.PHONY: run test test-fast lint install sysdeps services bench soak docs clean help

help:
	@echo "make run       - install, seed the demo store if empty, start the simulator and the app at http://127.0.0.1:8050"
	@echo "make test      - install, check PostgreSQL and Redis, lint and type-check, run the whole test suite"
	@echo "                 (what CI runs; ends with the 25 slowest tests)"
	@echo "make test-fast - lint, then the tests that need no PostgreSQL, Redis or browser (under 2 minutes)"
	@echo "make lint      - ruff on everything, mypy on the modules listed in pyproject.toml"
	@echo "make bench  - run the benchmarks under bench/ (prints figures and ratios)"
	@echo "make soak   - 10 minutes of two hosts on one PostgreSQL under 100 walls, 20 leaders and faults (store cut, Redis killed, leader killed)"
	@echo "make docs   - regenerate docs/settings.md from dashboard/settings.py"

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(STAMP)

# Debian packages for browser tests, CJK glyphs and PDF checks (installed when root, else explained).
sysdeps:
	@missing=""; for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing"; \
	    echo "install them with: sudo apt-get install --no-install-recommends$$missing"; exit 1; \
	  fi; \
	fi

services: install
	$(BIN)/python tests/check_services.py

run: install
	$(BIN)/python -m dashboard demo

lint: install
	$(BIN)/python -m ruff check --quiet .
	$(BIN)/python -m mypy

test: install sysdeps services lint
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

test-fast: install lint
	$(NO_SERVICES) $(BIN)/python -m pytest -m "$(FAST_MARKS)" $(PYTEST_ARGS)

bench: install services
	$(BIN)/python bench/run.py

# SOAK_ARGS="--minutes 1" for a short run
SOAK_ARGS ?=
soak: install services
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

docs: install
	$(BIN)/python -m dashboard settings-doc > docs/settings.md

clean:
	rm -rf $(VENV) var/*.db var/*.db-wal var/*.db-shm .pytest_cache .mypy_cache .ruff_cache
