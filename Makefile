# The two commands a newcomer needs (see README):
#   make demo   — a live simulated city on the dashboard (creates .venv on first use)
#   make test   — the whole test suite (creates .venv, installs Debian's chromium when missing)
# Pass options through ARGS / PYTEST_ARGS, e.g.  make demo ARGS="--vehicles 200 --speed 5"

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test install browser clean

demo: $(STAMP)
	$(BIN)/fleetwatch demo $(ARGS)

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/fleetwatch warmup
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# Browser tests drive Debian's chromium through playwright (never a downloaded browser build).
browser:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei"; } || { \
	  echo "installing Debian's chromium and a Chinese font for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium \
	    fonts-wqy-microhei >/dev/null; }

clean:
	rm -rf $(VENV) .fleetwatch artifacts .pytest_cache .hypothesis
