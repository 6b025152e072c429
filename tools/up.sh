#!/usr/bin/env bash
# `make up`: builds and starts a local HA Cairn control plane on 127.0.0.1
# with state under ./var: three cairn-master processes (each embeds a replica
# of the Paxos-replicated log), waits for a leader, writes one operator change
# through the log and shows every master's view of it. Re-running reuses the
# existing state (and running processes). `make down` (tools/down.sh) stops
# everything started here.
#
# Agents (`cairn-agent`, issue 5) are not part of it yet.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VAR="$ROOT/var"
mkdir -p "$VAR/run" "$VAR/logs" "$VAR/bin"

echo "==> building"
bazel build //master:cairn-master >/dev/null 2>"$VAR/logs/build.log" || {
  cat "$VAR/logs/build.log"; exit 1; }
BIN_DIR="$(bazel info bazel-bin 2>/dev/null)"
install -m 0755 "$BIN_DIR/master/cairn-master" "$VAR/bin/cairn-master"
MASTER_BIN="$VAR/bin/cairn-master"

PORTS=(5050 5051 5052)
MASTERS="127.0.0.1:5050/6050,127.0.0.1:5051/6051,127.0.0.1:5052/6052"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

for i in 0 1 2; do
  port="${PORTS[$i]}"
  pidfile="$VAR/run/master$i.pid"
  if running "$pidfile"; then
    echo "==> master $i already running (pid $(cat "$pidfile"), http 127.0.0.1:$port)"
    continue
  fi
  mkdir -p "$VAR/master$i"
  setsid "$MASTER_BIN" --ip=127.0.0.1 --port="$port" --masters="$MASTERS" \
    --work_dir="$VAR/master$i" --log_dir="$VAR/logs" --cluster=local \
    >>"$VAR/logs/master$i.out" 2>&1 < /dev/null &
  echo $! > "$pidfile"
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
  echo "no leader after 60 s; see $VAR/logs/" >&2
  exit 1
fi
echo "==> the master on 127.0.0.1:$leader leads"

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

echo "==> GET /master/state-summary (Mesos's shape) from the leader"
curl -fsS "http://127.0.0.1:$leader/master/state-summary"; echo

cat <<EOT

Cairn is up: three masters on 127.0.0.1:5050-5052 (log peers on 6050-6052),
state under ./var, logs under ./var/logs.
  state:    curl http://127.0.0.1:$leader/master/state
  history:  curl -N "http://127.0.0.1:$leader/api/v1/events?from=0"   (follows; Ctrl-C)
  metrics:  curl http://127.0.0.1:$leader/metrics/snapshot
  redirect: curl -i http://127.0.0.1:5050/master/redirect
  stop:     make down
EOT
