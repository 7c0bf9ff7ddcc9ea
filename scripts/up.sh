#!/usr/bin/env bash
# Installs what is missing, builds rkube, installs it as /usr/local/bin/rkube and starts
# `rkube server` on this machine (as a systemd service where systemd runs, otherwise as a
# background process logging to <data-dir>/server.log). Extra arguments go to `rkube server`.
# Run it again to rebuild and restart.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages
ensure_rust

echo "==> building rkube (release)"
cargo build --release --locked -p rkube
as_root install -m 0755 target/release/rkube /usr/local/bin/rkube

if [ "$(id -u)" -eq 0 ]; then
  DATA_DIR=${RKUBE_DATA_DIR:-/var/lib/rkube}
else
  DATA_DIR=${RKUBE_DATA_DIR:-$HOME/.rkube}
fi
mkdir -p "$DATA_DIR"
LOG="$DATA_DIR/server.log"
PIDFILE="$DATA_DIR/server.pid"

if [ -d /run/systemd/system ] && [ "$(id -u)" -eq 0 ]; then
  cat > /etc/systemd/system/rkube.service <<UNIT
[Unit]
Description=rkube server
After=network-online.target

[Service]
ExecStart=/usr/local/bin/rkube server --data-dir $DATA_DIR $*
Restart=always
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable -q rkube
  since=$(date '+%Y-%m-%d %H:%M:%S')
  systemctl restart rkube
  logs() { journalctl -u rkube --since "$since" --no-pager -o cat; }
else
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "==> stopping the running server (pid $(cat "$PIDFILE"))"
    kill "$(cat "$PIDFILE")"
    for _ in $(seq 100); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
  fi
  offset=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
  NO_COLOR=1 nohup setsid /usr/local/bin/rkube server --data-dir "$DATA_DIR" "$@" \
    >> "$LOG" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  logs() { tail -c +"$((offset + 1))" "$LOG"; }
fi

echo "==> waiting for rkube server"
for _ in $(seq 600); do
  if logs | grep -q "API server ready"; then
    logs | sed 's/^/    /'
    echo "==> rkube server is running (data in $DATA_DIR, log: ${LOG})"
    echo "    export KUBECONFIG=$DATA_DIR/kubeconfig.yaml"
    echo "    kubectl get namespaces"
    exit 0
  fi
  if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    logs | sed 's/^/    /' >&2
    echo "error: rkube server exited; see above" >&2
    exit 1
  fi
  sleep 0.1
done
logs | sed 's/^/    /' >&2
echo "error: rkube server did not become ready in 60 s" >&2
exit 1
