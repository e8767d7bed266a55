# Two commands do all the set-up on a fresh machine:
#   make serve   -> installs everything, starts http://127.0.0.1:8000 (offline)
#   make test    -> installs everything (Chromium included), runs the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-pins.txt | sha1sum | cut -c1-12)

.PHONY: serve test install chromium graphviz bench

$(STAMP): pyproject.toml requirements-pins.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-pins.txt
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# A Debian package, installed once when its command is missing: $(1) command, $(2) package, $(3) what for.
define debian_package
	@command -v $(1) >/dev/null 2>&1 || { \
	  echo "Installing Debian's $(2) $(3)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $(2); }
endef

chromium:
	$(call debian_package,chromium,chromium,for the browser tests)

graphviz:
	$(call debian_package,dot,graphviz,for the model page's graph layout)

serve: install graphviz
	$(BIN)/convzoo serve

test: install chromium graphviz
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/analysis.py
	$(BIN)/python bench/predict.py
