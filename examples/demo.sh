#!/usr/bin/env bash
# The README's demo: a robust2 client on the MicroPython unix port rides out a broker
# restart. Installs only what it needs first (tests/setup.sh demo: mosquitto, and the
# MicroPython unix port in .venv), saying what it does.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "demo: checking for mosquitto and the MicroPython unix port (tests/setup.sh demo)"
bash tests/setup.sh demo
exec python3 examples/demo.py
