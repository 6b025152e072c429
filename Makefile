# Cairn — the two commands of the README, and their helpers.
#   make up    install what is missing, build, start a local cluster under ./var
#   make test  install what is missing, build, run every test
.PHONY: up down test build setup bench

setup:
	@bash tools/setup.sh

build: setup
	bazel build //...

up: setup
	@bash tools/up.sh

down:
	@bash tools/down.sh

test: setup
	@bash tools/test.sh

bench: setup
	bazel run -c opt //bench:log_bench -- --quick
