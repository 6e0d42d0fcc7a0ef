# The README's two commands: `make demo` and `make test`. Everything else is a step they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# A Python >= 3.12, found without help: PATH first, then pyenv's versions.
PYTHON_CANDIDATES := python3.14 python3.13 python3.12 python3 \
	$(wildcard $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python3) \
	$(wildcard /root/.pyenv/versions/3.1[2-9]*/bin/python3)
FIND_PYTHON := for c in $(PYTHON_CANDIDATES); do \
	p=$$(command -v $$c 2>/dev/null) || continue; \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; \
	done

.PHONY: demo test lint typecheck browser-deps clean messages extract-messages screenshots

$(STAMP): pyproject.toml
	@base=$$($(FIND_PYTHON)); \
	if [ -z "$$base" ]; then echo "No Python >= 3.12 found. Install one (e.g. pyenv install 3.12)." >&2; exit 1; fi; \
	echo "Using $$base"; \
	[ -x $(PY) ] || $$base -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Compiled catalogues are build output; the .po files are the source.
messages: $(STAMP)
	@command -v msgfmt >/dev/null || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gettext >/dev/null; }
	cd src/stopcsam && ../../$(VENV)/bin/django-admin compilemessages --settings=stopcsam.settings_test -v 0

# After changing strings: refresh every app's catalogue, then translate the new entries.
extract-messages: $(STAMP)
	for app in src/stopcsam/*/locale; do (cd $$(dirname $$app) && \
	  ../../../$(VENV)/bin/django-admin makemessages -a --ignore tests --add-location never \
	  --no-obsolete --settings=stopcsam.settings_test -v 0); done

# Debian's Chromium for Playwright (which never downloads a browser here), and nginx and tor
# whose configurations the deployment tests check.
SYSTEM_PACKAGES := chromium nginx tor
browser-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || [ -x /usr/sbin/$$p ] || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	  else echo "Install Debian's$$missing (apt-get install$$missing)" >&2; command -v chromium >/dev/null || exit 1; fi; fi

demo: $(STAMP) messages
	$(VENV)/bin/stopcsam demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) messages
	$(VENV)/bin/mypy

# axe-core (npm) for the accessibility checks of the browser tests.
node_modules/axe-core/axe.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

test: $(STAMP) messages browser-deps node_modules/axe-core/axe.min.js lint typecheck
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(VENV)/bin/pytest

# The README's screenshots, from the browser journey.
screenshots: $(STAMP) messages browser-deps node_modules/axe-core/axe.min.js
	STOPCSAM_SCREENSHOTS=$(CURDIR)/docs/screenshots PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
		$(VENV)/bin/pytest tests/e2e/test_journey.py -k front_door

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
