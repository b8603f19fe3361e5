# The two set-up commands of the README. Each creates .venv and installs what it needs on first use
# (and again whenever pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

NODE_CLIENT := tests/foreign/node

.PHONY: demo test chromium clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/candleflow demo $(ARGS)

test: $(STAMP) chromium $(NODE_CLIENT)/node_modules/.installed-stamp
	$(PY) -m pytest $(ARGS)

# The foreign-client test's Node.js packages (kafkajs, the Confluent registry client), pinned by the lock file.
$(NODE_CLIENT)/node_modules/.installed-stamp: $(NODE_CLIENT)/package.json $(NODE_CLIENT)/package-lock.json
	npm ci --prefix $(NODE_CLIENT) --no-audit --no-fund --loglevel=error
	touch $@

# The dashboard test drives Debian's Chromium headless (no browser download at run time).
chromium:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium >/dev/null)

clean:
	rm -rf $(VENV) var test-artifacts $(NODE_CLIENT)/node_modules
