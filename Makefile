# `make run` and `make test` set everything up in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED := ../shared/data/chakraborty2016

$(BIN)/.installed: settings.ini setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,serve]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# The browser test drives Debian's Chromium (Playwright's own browser download is unreachable here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -q && apt-get install -y -q chromium

install: $(BIN)/.installed $(CHROMIUM)

run: install
	$(BIN)/clickbait generate -n 20 --seed 0

test: install
	$(BIN)/python -m pytest -q tests

# The bundled default models: the ULMFiT LM (clickbait voice), the same recipe with the news voice, the classifier
# and the realism discriminator on the clickbait LM's encoder. Rerun to resume after a kill.
model: install
	$(BIN)/clickbait train lm --data $(SHARED) --out clickbait/bundled/lm --work runs/default --force
	$(BIN)/clickbait train lm --data $(SHARED) --target-label news --out clickbait/bundled/lm-news --work runs/news --force
	$(BIN)/clickbait train classifier --data $(SHARED) --lm clickbait/bundled/lm --out clickbait/bundled/classifier --work runs/classifier --force
	$(BIN)/clickbait train discriminator --data $(SHARED) --lm clickbait/bundled/lm --out clickbait/bundled/discriminator --work runs/discriminator --force

.PHONY: install run test model
