# The two commands of the README's quickstart, and what they need.
#   make demo   runs the service on embedded defaults (SQLite + the local mail stack)
#   make test   runs the whole test suite (what CI runs)
# Everything they need is installed here, so a fresh clone needs nothing else.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench mailstack clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Dovecot (IMAP + LMTP) for the local mail stack; a no-op when it is installed.
mailstack: $(STAMP)
	$(BIN)/python -m devmail ensure

demo: $(STAMP) mailstack
	$(BIN)/rsvpmail demo

test: $(STAMP) mailstack
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) mailstack
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) rsvpmail.db rsvpmail.db-wal rsvpmail.db-shm .demo
