# mlmtool: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench install clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## demo: predictions and one diagram per attention head for a real sentence, offline
demo: $(STAMP)
	$(VENV)/bin/mlmtool predict -m minilm "The [MASK] sat on the mat because it was tired." \
		--attention-dir demo-out/attention --overwrite
	@echo "Open demo-out/attention/overview.png (all heads) or any Attention_Layer*_Head*.png"

## test: the whole suite, real-model tests included (what CI runs)
test: $(STAMP)
	$(PY) -m pytest -q

## test-fast: skip the slow real-model tests
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) scripts/bench.py

clean:
	rm -rf demo-out .pytest_cache
