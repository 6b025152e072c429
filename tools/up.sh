#!/usr/bin/env bash
# `make up`: builds and starts a local HA Cairn cluster on 127.0.0.1 with
# state under ./var:
#   - three cairn-master processes (HTTP 5050-5052, log peers 6050-6052),
#     each embedding a replica of the Paxos-replicated log;
#   - two cairn-agent processes (HTTP 5061, 5062) with small, explicit
#     resources, launching cairn-executors (cgroups isolation when the
#     cgroup hierarchies are writable, else posix sessions);
# waits until a leader is elected and both agents are registered, writes one
# operator change through the log, runs a demo task with `cairnctl run` and
# prints the dashboard URL. Binaries are installed into var/bin, pid files
# go to var/run, logs to var/logs/<process>/. Re-running reuses the existing
# state and the processes still running. `make down` (tools/down.sh) stops
# everything started here, the agents' executors and tasks included.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VAR="$ROOT/var"
mkdir -p "$VAR/run" "$VAR/logs" "$VAR/bin"

echo "==> building (bazel; the first build takes a few minutes)"
bazel build //master:cairn-master //agent:cairn-agent //agent:cairn-executor \
  //cli:cairnctl >"$VAR/logs/build.log" 2>&1 || {
  cat "$VAR/logs/build.log"; exit 1; }
BIN_DIR="$(bazel info bazel-bin 2>/dev/null)"
# install(1) replaces the file (a new inode), so running processes keep theirs.
install -m 0755 "$BIN_DIR/master/cairn-master" "$VAR/bin/cairn-master"
install -m 0755 "$BIN_DIR/agent/cairn-agent" "$VAR/bin/cairn-agent"
install -m 0755 "$BIN_DIR/agent/cairn-executor" "$VAR/bin/cairn-executor"
install -m 0755 "$BIN_DIR/cli/cairnctl" "$VAR/bin/cairnctl"

PORTS=(5050 5051 5052)
MASTERS="127.0.0.1:5050/6050,127.0.0.1:5051/6051,127.0.0.1:5052/6052"
MASTER_FLAG="127.0.0.1:5050,127.0.0.1:5051,127.0.0.1:5052"
AGENT_PORTS=(5061 5062)
AGENT_RESOURCES=("cpus:2;mem:1024;disk:1024;ports:[31000-31099]"
                 "cpus:2;mem:1024;disk:1024;ports:[31100-31199]")
CAIRNCTL=("$VAR/bin/cairnctl" "--master=$MASTER_FLAG")

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

for i in 0 1 2; do
  port="${PORTS[$i]}"
  pidfile="$VAR/run/master$i.pid"
  if running "$pidfile"; then
    echo "==> master $i already running (pid $(cat "$pidfile"), http 127.0.0.1:$port)"
    continue
  fi
  mkdir -p "$VAR/master$i" "$VAR/logs/master$i"
  setsid "$VAR/bin/cairn-master" --ip=127.0.0.1 --port="$port" \
    --masters="$MASTERS" --work_dir="$VAR/master$i" \
    --log_dir="$VAR/logs/master$i" --cluster=local \
    >>"$VAR/logs/master$i/stdout.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "==> started master $i (pid $!, http 127.0.0.1:$port, state $VAR/master$i)"
done

field() { grep -o "\"$1\":[^,}]*" | head -n1 | cut -d: -f2- | tr -d '"'; }

echo "==> waiting for a leader"
deadline=$((SECONDS + 60))
leader=""
while [ $SECONDS -lt $deadline ]; do
  for port in "${PORTS[@]}"; do
    if curl -fsS "http://127.0.0.1:$port/master/replica" 2>/dev/null |
        grep -q '"role":"leading"'; then
      leader=$port; break 2
    fi
  done
  sleep 0.2
done
if [ -z "$leader" ]; then
  echo "no leader after 60 s; see $VAR/logs/master*/" >&2
  exit 1
fi
echo "==> the master on 127.0.0.1:$leader leads"

# cgroups when this process may create cgroups (as root, v1 hierarchies
# writable), else posix: tasks in sessions of their own.
isolation=posix
if [ "$(id -u)" = 0 ] && [ -w /sys/fs/cgroup/memory ] && [ -w /sys/fs/cgroup/cpu ]; then
  isolation=cgroups
fi

for i in 0 1; do
  port="${AGENT_PORTS[$i]}"
  pidfile="$VAR/run/agent$i.pid"
  if running "$pidfile"; then
    echo "==> agent $i already running (pid $(cat "$pidfile"), http 127.0.0.1:$port)"
    continue
  fi
  mkdir -p "$VAR/agent$i" "$VAR/logs/agent$i"
  setsid "$VAR/bin/cairn-agent" --ip=127.0.0.1 --port="$port" \
    --master="$MASTER_FLAG" --work_dir="$VAR/agent$i" \
    --log_dir="$VAR/logs/agent$i" --isolation="$isolation" \
    --resources="${AGENT_RESOURCES[$i]}" --attributes="rack:r$i" \
    >>"$VAR/logs/agent$i/stdout.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  echo "==> started agent $i (pid $!, http 127.0.0.1:$port, $isolation isolation, state $VAR/agent$i)"
done

echo "==> waiting for both agents to register"
for i in 0 1; do
  port="${AGENT_PORTS[$i]}"
  deadline=$((SECONDS + 60))
  until curl -fsS "http://127.0.0.1:$port/state" 2>/dev/null |
      grep -q '"registered":true'; do
    if [ $SECONDS -ge $deadline ] || ! running "$VAR/run/agent$i.pid"; then
      echo "agent $i did not register; see $VAR/logs/agent$i/" >&2
      tail -n 20 "$VAR/logs/agent$i/stdout.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
done
"${CAIRNCTL[@]}" agents

echo "==> an operator change through the replicated log (UPDATE_WEIGHTS)"
weight="$((RANDOM % 90 + 10))"
curl -fsS -X POST -H 'Content-Type: application/json' \
  "http://127.0.0.1:$leader/api/v1" \
  -d "{\"type\":\"UPDATE_WEIGHTS\",\"update_weights\":{\"weight_infos\":[{\"role\":\"demo\",\"weight\":$weight}]}}" \
  >/dev/null
echo "    role 'demo' weight $weight committed"
echo "==> every master's view (standbys fold the same log)"
printf '  %-16s %-10s %-9s %s\n' master role applied weights
for port in "${PORTS[@]}"; do
  deadline=$((SECONDS + 10))
  while :; do
    r="$(curl -fsS "http://127.0.0.1:$port/master/replica" 2>/dev/null || true)"
    if echo "$r" | grep -q "\"weight\":$weight" || [ $SECONDS -ge $deadline ]; then
      break
    fi
    sleep 0.1
  done
  printf '  %-16s %-10s %-9s %s\n' "127.0.0.1:$port" "$(echo "$r" | field role)" \
    "$(echo "$r" | field applied)" "$(echo "$r" | grep -o '"weights":\[[^]]*\]')"
done

echo "==> a demo task: cairnctl run -- '...'"
set +e
"${CAIRNCTL[@]}" run --name=demo --cpus=0.1 --mem=32 --timeout=120s -- \
  'echo "hello from $MESOS_EXECUTOR_ID on $(hostname)"; echo "sandbox: $MESOS_SANDBOX"'
demo=$?
set -e
if [ "$demo" -ne 0 ]; then
  echo "the demo task did not finish (cairnctl exit $demo); see $VAR/logs/" >&2
  exit 1
fi
echo "    the demo task finished (exit 0)"

cat <<EOT

Cairn is up: three masters on 127.0.0.1:5050-5052 (log peers 6050-6052),
two agents on 127.0.0.1:5061-5062; state under ./var, logs under ./var/logs.
  dashboard: http://127.0.0.1:$leader/   (any master serves it)
  cairnctl:  export CAIRN_MASTER=$MASTER_FLAG
             var/bin/cairnctl status
             var/bin/cairnctl agents
             var/bin/cairnctl run -- 'echo hi; exit 3'; echo \$?
             var/bin/cairnctl tasks --all
             var/bin/cairnctl events --follow      (Ctrl-C)
             var/bin/cairnctl metrics --filter=master/
  metrics:   curl http://127.0.0.1:$leader/metrics   (Prometheus text)
  logs:      curl 'http://127.0.0.1:$leader/files/read?path=/master/log/cairn-master.log&offset=0'
  stop:      make down   (state stays; rm -rf var to start afresh)
EOT
