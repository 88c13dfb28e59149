# funnel_lab — `make report` and `make test` set up everything they need on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   := data/demo

.DEFAULT_GOAL := help
.PHONY: help report test demo-data system-deps bench mutants lab lock clean

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed 's/^## /  make /'

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name funnel-lab --display-name "Python (funnel_lab)" >/dev/null
	touch $(STAMP)

$(DEMO)/opportunities.csv: | $(STAMP)
	$(VENV)/bin/funnel-lab demo-data $(DEMO)

## demo-data: write the synthetic demo CRM into data/demo (once)
demo-data: $(DEMO)/opportunities.csv

## report: set up, then run every report on the demo data into reports/demo/
report: $(STAMP) demo-data
	$(VENV)/bin/funnel-lab run params/demo.yaml

## system-deps: Chromium and CJK fonts for the browser tests and Chinese charts (apt-get, when root)
system-deps:
	@bash scripts/system-deps.sh

## test: set up (plus Chromium and fonts), then run the whole test suite
test: $(STAMP) system-deps demo-data
	$(PY) -m pytest

## bench: run every benchmark in bench/ but mutants.py (never part of make test)
bench: $(STAMP)
	@for b in bench/*.py; do [ -e "$$b" ] || continue; [ "$$b" = bench/mutants.py ] && continue; echo "== $$b"; $(PY) $$b || exit 1; done

## mutants: mutation testing of the analysis modules, fast tests, 2 workers (hours; MODULES=stages,funnel for some)
mutants: $(STAMP)
	$(PY) bench/mutants.py --workers 2 $(if $(MODULES),--modules $(MODULES))

## lab: open JupyterLab on the notebooks
lab: $(STAMP) demo-data
	$(VENV)/bin/jupyter lab notebooks/

## lock: re-pin requirements.lock from a fresh resolve of pyproject.toml
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e ".[dev]"
	(head -2 requirements.lock; .venv-lock/bin/pip freeze --exclude-editable | grep -v '^funnel') > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .venv-lock

## clean: remove generated reports and demo data (keeps .venv)
clean:
	rm -rf reports/* $(DEMO)
