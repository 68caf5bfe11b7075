# Two commands: `make run` answers a sample question, `make test` runs the whole suite.
# Both create .venv on first use and reinstall only when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUESTION ?= 2019年衡阳全市调解了多少件矛盾纠纷？

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint bench eval clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/reportqa ask "$(QUESTION)"

test: $(STAMP)
	$(BIN)/ruff check retrieval bot tests scripts
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/reportqa bench

eval: $(STAMP)
	$(BIN)/reportqa eval corpus/eval/hengyang-dev.jsonl --mode dense --mode lexical --mode hybrid

clean:
	rm -rf $(VENV) .reportqa
