# `make demo` and `make test` do the whole set-up themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.genzoo-installed

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[test,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/genzoo demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	@big=$$(git ls-files -z | xargs -0 -r du -b 2>/dev/null | awk '$$1 > 20*1024*1024 {print $$2}'); \
	if [ -n "$$big" ]; then echo "committed files over 20 MB: $$big"; exit 1; fi

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info
