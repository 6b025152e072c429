#!/usr/bin/env bash
# `make down`: stops every process `make up` started (state stays in ./var).
set -uo pipefail
cd "$(dirname "$0")/.."
VAR="$PWD/var"
stopped=0
for pidfile in "$VAR"/run/*.pid; do
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    stopped=$((stopped + 1))
  fi
  rm -f "$pidfile"
done
echo "stopped $stopped process(es); state kept in ./var (rm -rf var to start afresh)"
