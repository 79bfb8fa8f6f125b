# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test check lint redis redis-stop bench bench-quick bench-scale clean

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

## Start the local Redis (unless REDIS_URL / REDIS_HOST are set) and the app on http://localhost:$(PORT)
run: $(BIN)/activate
	$(BIN)/python -m chatbot.prepare
	$(BIN)/python -m streamlit run app.py --server.port $(PORT) --server.headless true

## Lint, type-check and run every test against a real local Redis
test: $(BIN)/activate
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/python -m pytest

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy .

redis: $(BIN)/activate
	$(BIN)/python -m memory.embedded start

redis-stop:
	$(BIN)/python -m memory.embedded stop

bench: $(BIN)/activate
	$(BIN)/python -m bench

bench-quick: $(BIN)/activate
	$(BIN)/python -m bench --quick

## Redis at scale (not in CI): 100k users x 20 messages + one 100k-message user; SCALE_ARGS="--users 10000" for less
bench-scale: $(BIN)/activate
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
