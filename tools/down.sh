#!/usr/bin/env bash
# `make down`: stops every process `make up` started (state stays in ./var):
# the agents (pid files), then the executors and tasks they started (in
# sessions of their own: found by MESOS_SANDBOX under ./var in their
# environment; their now empty cgroups are removed), then the masters. Each
# gets SIGTERM, then SIGKILL after 5 s.
set -uo pipefail
cd "$(dirname "$0")/.."
VAR="$PWD/var"
stopped=0

# Waits up to 5 s for the given pids to exit, then SIGKILLs what is left.
term_then_kill() {
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null
  for _ in $(seq 50); do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null
  return 0
}

stop_pidfiles() {
  local pids=()
  for pidfile in "$@"; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      pids+=("$pid")
      stopped=$((stopped + 1))
    fi
    rm -f "$pidfile"
  done
  term_then_kill "${pids[@]}"
}

# Live processes whose environment has MESOS_SANDBOX below ./var: the
# executors and every task process (tasks inherit the executor's
# environment).
sandbox_processes() {
  local environ pid
  for environ in /proc/[0-9]*/environ; do
    pid="${environ#/proc/}"; pid="${pid%/environ}"
    [ "$pid" = "$$" ] && continue
    if { tr '\0' '\n' <"$environ"; } 2>/dev/null |
        grep -q "^MESOS_SANDBOX=$VAR/"; then
      echo "$pid"
    fi
  done
}

# The cgroups (cgroups isolation) of the given pids below /cairn/, as
# directories; emptied once the pids are gone.
cgroups_of() {
  local pid line controllers path c
  for pid in "$@"; do
    { cat "/proc/$pid/cgroup"; } 2>/dev/null | while IFS= read -r line; do
      controllers="$(echo "$line" | cut -d: -f2)"
      path="$(echo "$line" | cut -d: -f3-)"
      case "$path" in /cairn/*) ;; *) continue ;; esac
      if [ -z "$controllers" ]; then
        echo "/sys/fs/cgroup$path"; echo "/sys/fs/cgroup/unified$path"
      else
        echo "/sys/fs/cgroup/$controllers$path"
        for c in ${controllers//,/ }; do echo "/sys/fs/cgroup/$c$path"; done
      fi
    done
  done | sort -u
}

stop_pidfiles "$VAR"/run/agent*.pid

# The agents are gone (they leave their executors running, as Mesos's do);
# stop those executors and their tasks until none is left.
for _ in 1 2 3; do
  mapfile -t pids < <(sandbox_processes)
  [ ${#pids[@]} -gt 0 ] || break
  stopped=$((stopped + ${#pids[@]}))
  mapfile -t cgroups < <(cgroups_of "${pids[@]}")
  term_then_kill "${pids[@]}"
  for _ in $(seq 20); do
    left=0
    for dir in "${cgroups[@]}"; do
      [ -d "$dir" ] && { rmdir "$dir" 2>/dev/null || left=1; }
    done
    [ $left = 0 ] && break
    sleep 0.1
  done
done

stop_pidfiles "$VAR"/run/*.pid
echo "stopped $stopped process(es); state kept in ./var (rm -rf var to start afresh)"
