#!/usr/bin/env bash
# `make run`: migrate, seed the demo workspace, start the Meta Cloud API simulator beside the
# platform (its demo number is connected to the demo workspace), then serve in the foreground.
set -euo pipefail
BIN=.venv/bin
HOST=${CONNECTX_HOST:-127.0.0.1}
PORT=${CONNECTX_PORT:-8000}
SIM_PORT=${CONNECTX_SIMULATOR_PORT:-8025}
export CONNECTX_GRAPH_BASE_URL=${CONNECTX_GRAPH_BASE_URL:-http://$HOST:$SIM_PORT}

$BIN/connectx migrate
$BIN/connectx demo
$BIN/connectx simulator --host "$HOST" --port "$SIM_PORT" \
  --callback-url "http://$HOST:$PORT/webhooks/whatsapp" >"${CONNECTX_DATA_DIR:-var}/simulator.log" 2>&1 &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT INT TERM
cat <<MSG

  ConnectX:            http://$HOST:$PORT   (sign in with the demo account above)
  Customer phone page: http://$HOST:$SIM_PORT/phone   (chat with the demo number as a customer)
  Local mail outbox:   $BIN/connectx mail list

MSG
$BIN/connectx serve --no-migrate
