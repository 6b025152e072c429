#!/usr/bin/env bash
# `make up`: builds and starts a local three-replica Cairn log on 127.0.0.1
# with state under ./var, waits for a leader, appends a few entries and reads
# them back. Re-running reuses the existing state (and running processes).
# `make down` (tools/down.sh) stops everything started here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VAR="$ROOT/var"
mkdir -p "$VAR/run" "$VAR/logs" "$VAR/bin"

echo "==> building"
bazel build //log:cairn-log >/dev/null 2>"$VAR/logs/build.log" || {
  cat "$VAR/logs/build.log"; exit 1; }
BIN="$(bazel info bazel-bin 2>/dev/null)/log/cairn-log"
install -m 0755 "$BIN" "$VAR/bin/cairn-log"
CAIRN_LOG="$VAR/bin/cairn-log"

REPLICAS="1=127.0.0.1:7101/8101,2=127.0.0.1:7102/8102,3=127.0.0.1:7103/8103"
HTTP="127.0.0.1:8101,127.0.0.1:8102,127.0.0.1:8103"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

for id in 1 2 3; do
  pidfile="$VAR/run/log$id.pid"
  if running "$pidfile"; then
    echo "==> replica $id already running (pid $(cat "$pidfile"))"
    continue
  fi
  mkdir -p "$VAR/log$id"
  setsid "$CAIRN_LOG" replica --id="$id" --replicas="$REPLICAS" \
    --dir="$VAR/log$id" --log_dir="$VAR/logs" \
    >>"$VAR/logs/replica$id.out" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  echo "==> started replica $id (pid $!, http 127.0.0.1:810$id, state $VAR/log$id)"
done

echo "==> waiting for a leader"
deadline=$((SECONDS + 60))
leader=""
while [ $SECONDS -lt $deadline ]; do
  for id in 1 2 3; do
    if curl -fsS "http://127.0.0.1:810$id/log/status" 2>/dev/null | grep -q '"serving":true'; then
      leader=$id; break 2
    fi
  done
  sleep 0.2
done
if [ -z "$leader" ]; then
  echo "no leader after 60 s; see $VAR/logs/" >&2
  exit 1
fi
echo "==> replica $leader leads"

echo "==> appending three entries"
for word in hello from cairn; do
  "$CAIRN_LOG" append --http="$HTTP" "$word $(date -u +%H:%M:%S)"
done

field() { grep -o "\"$1\":[^,}]*" | head -n1 | cut -d: -f2- | tr -d '"'; }
echo "==> replicas"
printf '  %-8s %-11s %-9s %s\n' replica status role learned_through
for id in 1 2 3; do
  s="$("$CAIRN_LOG" status --http="127.0.0.1:810$id")"
  printf '  %-8s %-11s %-9s %s\n' "$id" "$(echo "$s" | field status)" \
    "$(echo "$s" | field role)" "$(echo "$s" | field learned_through)"
done
echo "==> the last entries (position index data)"
"$CAIRN_LOG" read --http="$HTTP" --format=text | tail -n 3

cat <<EOT

Cairn log is up: three replicas, state under ./var, logs under ./var/logs.
  status:  $CAIRN_LOG status --http=127.0.0.1:8101
  append:  $CAIRN_LOG append --http=$HTTP "some entry"
  read:    $CAIRN_LOG read --http=$HTTP --format=text
  stop:    make down
EOT
