# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
HOST ?= 127.0.0.1

.PHONY: run stop test check lint redis redis-stop screenshot bench bench-quick bench-scale bench-conversations bench-render bench-ui bench-rerun bench-load bench-recall bench-replies clean

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

## Start the local Redis (unless REDIS_URL / REDIS_HOST are set) and the app on
## http://127.0.0.1:$(PORT) (HOST=0.0.0.0 to open it to the network); Ctrl-C stops both
run: $(BIN)/activate
	$(BIN)/python -m chatbot.devserver --host $(HOST) --port $(PORT)

## Stop the local Redis (one started by `make redis`, or left by an interrupted run)
stop: redis-stop

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

## Retake docs/screenshot.png from the running app (needs Chromium)
screenshot: $(BIN)/activate
	UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/browser/test_screenshot.py

bench: $(BIN)/activate
	$(BIN)/python -m bench

bench-quick: $(BIN)/activate
	$(BIN)/python -m bench --quick

## Redis at scale (not in CI): 100k users x 20 messages + one 100k-message user; SCALE_ARGS="--users 10000" for less
bench-scale: $(BIN)/activate
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

## Conversations (issue 16) with search at scale (not in CI); CONV_ARGS="--users 10000 --messages 100"
bench-conversations: $(BIN)/activate
	$(BIN)/python -m bench.conversations $(CONV_ARGS)

## A 10-message page render: page_view (one script call) vs redisvl get_recent, same loop; RENDER_ARGS="--users 1000"
bench-render: $(BIN)/activate
	$(BIN)/python -m bench.render $(RENDER_ARGS)

## Slider change until the page settles, and Enter until the box takes the next prompt: app vs a minimal Streamlit chat page, side by side (needs Chromium); UI_ARGS="--rounds 5 --prompts 5"
bench-ui: $(BIN)/activate
	$(BIN)/python -m bench.ui_settle $(UI_ARGS)

## One rerun with 50 messages, app vs a minimal Streamlit chat page (AppTest); RERUN_ARGS="--settings --profile"
bench-rerun: $(BIN)/activate
	$(BIN)/python -m bench.ui_rerun $(RERUN_ARGS)

## Search and recall by meaning on a LoCoMo-format file (not in CI); RECALL_ARGS="--dataset FILE"
bench-recall: $(BIN)/activate
	$(BIN)/python -m bench.recall $(RECALL_ARGS)

## Users chatting through the real websocket (not in CI, ~15 min): 1..200 users on one
## instance, then two instances; LOAD_ARGS="--users 1,10 --duration 20 --two 0" for less
bench-load: $(BIN)/activate
	$(BIN)/python -m bench.load $(LOAD_ARGS)

## Time to first token through the reply stream vs in-script, side by side; Redis memory of a reply in flight
bench-replies: $(BIN)/activate
	$(BIN)/python -m bench.reply_stream $(REPLIES_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
