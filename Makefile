# mlmtool: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench en-mini install clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## demo: predictions and one diagram per attention head for a real sentence, offline
## (en-mini: the English fill-mask model shipped with mlmtool, built from MiniLM)
demo: $(STAMP)
	$(VENV)/bin/mlmtool predict -m en-mini -k 5 "She opened the [MASK] and let the cat out." \
		-o demo-out/attention --html demo-out/view.html --overwrite
	@echo "Open demo-out/view.html (interactive), demo-out/attention/overview.png (all heads)"
	@echo "or any demo-out/attention/Attention_Layer{L}_Head{H}.png (layers and heads from 1)."

## test: the whole suite, real-model tests included (what CI runs), on two worker processes
## (pytest-xdist; a test file's tests stay in one worker, each worker runs torch on one thread)
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

## test-fast: skip the slow real-model tests
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow"

bench: $(STAMP)
	$(PY) -m scripts.benchmarks.bench

## en-mini: rebuild the shipped offline English model (Debian and npm corpora, 7 stages, ~8.5 h on 2 cores)
en-mini: $(STAMP)
	$(PY) -m scripts.en_mini.build --recipe

clean:
	rm -rf demo-out .pytest_cache
