#!/usr/bin/env bash
# Runs the examples against a private mosquitto on 127.0.0.1, on the MicroPython unix
# port (--cpython: on CPython). Installs what is missing first (tests/setup.sh demo:
# mosquitto and the MicroPython unix port in .venv, nothing else).
#   bash examples/run.sh example_pub      bash examples/run.sh all      bash examples/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh demo
exec python3 examples/run.py "$@"
