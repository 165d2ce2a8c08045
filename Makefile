# The only commands a newcomer needs: make run, make test, make lint, make bench.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/warbler demo
	$(BIN)/warbler serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python bench/send_throughput.py
	$(BIN)/python bench/e2e_latency.py
	$(BIN)/python bench/idle_connections.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/reconnect_storm.py
	$(BIN)/python bench/kb_retrieval.py --chunks 10000
	$(BIN)/python bench/kb_retrieval.py --chunks 100000
	$(BIN)/python bench/kb_ingest.py
	$(BIN)/python bench/ai_overhead.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
