#!/usr/bin/env bash
# Sets everything up (tests/setup.sh: mosquitto, the MicroPython unix port) and runs
# the demo: a robust2 client on MicroPython rides out a broker restart.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh >/dev/null
exec .venv/bin/python examples/demo.py
