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

# Production-like settings for `check --deploy`: DEBUG off, no embedded servers (the URLs come from the
# stack around `checks`), a random secret, a real host name, HTTPS behind a proxy.
PROD_ENV := env -u TALLY_EMBEDDED DEBUG=0 ALLOWED_HOSTS=billing.example.com SECURE_COOKIES=1 \
	SECURE_SSL_REDIRECT=1 SECURE_HSTS_SECONDS=31536000 SECURE_HSTS_INCLUDE_SUBDOMAINS=1 SECURE_HSTS_PRELOAD=1 \
	SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto

checks:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	SECRET_KEY="$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	  $(PROD_ENV) $(PY) manage.py check --deploy --fail-level WARNING
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
	$(PY) bench/webhook_bench.py

clean:
	rm -rf $(VENV) .data
