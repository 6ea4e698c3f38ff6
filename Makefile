# Two commands: `make run` and `make test`. Everything they need is installed from here.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install run test checks browser-deps bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) scripts/stack.py run

# Throwaway embedded PostgreSQL + Redis around the whole check list; stops at the first failure.
test: install browser-deps
	$(PY) scripts/stack.py exec -- $(MAKE) --no-print-directory checks

checks:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	$(VENV)/bin/pytest

# Browser tests drive Debian's Chromium; without it (no root, no apt) they are skipped, not failed.
browser-deps:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) \
	  || echo "chromium not installed: browser tests will be skipped"; }

bench: install
	$(PY) scripts/stack.py exec -- $(PY) bench/ledger_bench.py
	$(PY) scripts/stack.py exec -- $(PY) bench/ingest_bench.py
	$(PY) scripts/stack.py exec -- $(PY) bench/invoice_bench.py
	$(PY) bench/pdf_bench.py

clean:
	rm -rf $(VENV) .data
