#!/usr/bin/env bash
# Sets everything up (tests/setup.sh) and runs every test, on MicroPython and CPython.
# Extra arguments go to pytest, e.g.: bash tests/run.sh -k qos2 -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
exec .venv/bin/python -m pytest tests "$@"
