# marketmesh: every target sets up what it needs (venv, locked deps, stubs,
# core_rs), idempotently: a second run with nothing changed takes seconds.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
UV          := $(VENV)/bin/uv
BIN         := $(abspath bin)
GEN         := services/common/gen
PROTOS      := $(shell find proto -name '*.proto')
CORE_SRC    := $(shell find core_rs/src core_rs/python -type f) core_rs/Cargo.toml core_rs/pyproject.toml
UV_VERSION      := 0.13.8
GHZ_VERSION     := v0.121.0
GRPCURL_VERSION := v1.9.3
BUF_VERSION     := v1.75.0
PYTEST_ARGS ?=
# fastbuild: no LTO, incremental; for quick kernel iterations only.
CORE_PROFILE ?= release

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup run test test-py test-rs proto core lint fmt bench loadtest tools clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(VENV)/.deps: requirements.lock
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@test -x $(UV) || $(VENV)/bin/pip install --quiet uv==$(UV_VERSION)
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	@rm -f $(VENV)/.core
	@touch $@

$(GEN)/.stamp: $(PROTOS) $(VENV)/.deps
	@rm -rf $(GEN) && mkdir -p $(GEN)
	$(PY) -m grpc_tools.protoc -I proto --python_out=$(GEN) --grpc_python_out=$(GEN) --pyi_out=$(GEN) $(PROTOS)
	@find $(GEN) -type d -exec touch {}/__init__.py \;
	@touch $@

$(VENV)/.core: $(CORE_SRC) $(VENV)/.deps
	cd core_rs && VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH maturin develop --profile $(CORE_PROFILE) --uv --quiet
	@touch $@

setup: $(VENV)/.deps $(GEN)/.stamp $(VENV)/.core ## create .venv, install locked deps, generate stubs, build core_rs

proto: $(GEN)/.stamp ## generate Python stubs from proto/

core: $(VENV)/.core ## build core_rs (release) into .venv

run: setup ## start every service in the foreground (Ctrl-C stops them)
	exec $(PY) -m services.launcher

test: setup test-rs test-py ## cargo test + pytest

test-rs:
	cd core_rs && cargo test --release --quiet

test-py: setup
	$(PY) -m pytest $(PYTEST_ARGS)

$(BIN)/ghz:
	GOBIN=$(BIN) go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)
$(BIN)/grpcurl:
	GOBIN=$(BIN) go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
$(BIN)/buf:
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

tools: $(BIN)/ghz $(BIN)/grpcurl $(BIN)/buf ## install ghz, grpcurl and buf (pinned) into bin/

lint: setup $(BIN)/buf ## ruff, buf lint, cargo fmt and clippy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(BIN)/buf lint
	cd core_rs && cargo fmt --check && cargo clippy --all-targets --features python -- -D warnings

fmt: setup ## format Python and Rust
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	cd core_rs && cargo fmt

bench: setup ## in-process and gRPC benchmarks; results in bench/results/
	$(PY) -m bench.run

loadtest: setup $(BIN)/ghz ## ghz against a running-in-process pricing server; results in bench/results/
	$(PY) -m bench.loadtest --ghz $(BIN)/ghz

clean: ## remove build output (keeps var/ data)
	rm -rf $(VENV) $(GEN) core_rs/target bin
