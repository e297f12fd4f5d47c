# Each target sets up what it needs: a fresh machine only needs Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-engine bench-dns bench-slack bench-tickets clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: the Slack bot in this terminal (the console, no Slack needed): the sample bounce's ticket
## from paste to re-check on a scratch database; at a terminal you carry on (:quit to leave)
run: $(STAMP)
	$(BIN)/delistbot serve --console --demo

## test: lint, type-check (strict for bot/core, see pyproject.toml), run the whole test suite
test: $(STAMP)
	$(BIN)/ruff check bot tests benchmarks
	$(BIN)/mypy bot
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/agreement.py

## bench-engine: messages/s and peak memory over the corpus beside Debian's Sisimai (installed with apt if it can)
bench-engine: $(STAMP)
	$(BIN)/python benchmarks/engine_throughput.py

## bench-dns: DNS figures against the loopback server; pydnsbl is installed here only, for comparison
bench-dns: $(STAMP)
	$(BIN)/pip install --quiet pydnsbl
	$(BIN)/python benchmarks/dns_single.py
	$(BIN)/python benchmarks/dns_sweep.py

## bench-slack: ack latency of 50 concurrent /delist commands (one DNS list silent), RSS with 1,000 tickets
bench-slack: $(STAMP)
	$(BIN)/python benchmarks/slack_ack.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

## bench-tickets: open+send 500 tickets, `due` over 500 and 10,000, the SQLite file's size
bench-tickets: $(STAMP)
	$(BIN)/python benchmarks/tickets.py
