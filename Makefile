# `make run` and `make test` set everything up in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED := ../shared/data/chakraborty2016

$(BIN)/.installed: settings.ini setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/clickbait generate -n 20 --seed 0

test: install
	$(BIN)/python -m pytest -q tests

model: install
	$(BIN)/python -m clickbait.train --data $(SHARED) --out clickbait/bundled/default --work runs/default

.PHONY: install run test model
