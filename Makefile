# The two set-up commands of the README. Each creates .venv and installs what it needs on first use
# (and again whenever pyproject.toml changes).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test chromium clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/candleflow demo $(ARGS)

test: $(STAMP) chromium
	$(PY) -m pytest $(ARGS)

# The dashboard test drives Debian's Chromium headless (no browser download at run time).
chromium:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium >/dev/null)

clean:
	rm -rf $(VENV) var test-artifacts
