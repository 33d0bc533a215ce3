"""Runs the examples against a private mosquitto on 127.0.0.1 (examples/localbroker.py),
on the MicroPython unix port (default) or on CPython:

    bash examples/run.sh NAME...          # e.g. example_pub, or all
    bash examples/run.sh --cpython NAME   # on CPython
    bash examples/run.sh                  # lists the examples

run.sh installs what is missing first (tests/setup.sh demo), then runs this file,
which needs nothing but Python 3.8+, mosquitto and, for MicroPython, .venv/bin/micropython.
Each example gets MQTT_HOST, MQTT_PORT, ROUNDS and TOPIC through the environment
(examples/settings.py reads them) and runs in a scratch folder; ROUNDS bounds its main
loop (--rounds, default 40), so that every example ends by itself."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from localbroker import Broker  # noqa: E402

# the examples, in the order "all" runs them (settings.py, the demo's files and these
# tools are not examples)
EXAMPLES = ["example_pub", "example_sub", "sensor", "button", "alarm", "custom_policy", "deep_sleep"]


def micropython():
    for exe in (os.path.join(REPO, ".venv", "bin", "micropython"), shutil.which("micropython")):
        if exe and os.access(exe, os.X_OK):
            return exe
    raise SystemExit("the MicroPython unix port is not installed: run  bash tests/setup.sh demo  "
                     "(or use --cpython)")


def run_example(name, broker_port, interp, rounds, workdir, timeout=60):
    """Runs one example to its end; returns (exit code, output)."""
    env = dict(os.environ, MQTT_HOST="127.0.0.1", MQTT_PORT=str(broker_port), ROUNDS=str(rounds),
               TOPIC="example-%s" % name)
    if interp == "cpython":
        cmd = [sys.executable]
        env["PYTHONPATH"] = os.pathsep.join([REPO, HERE])
    else:
        cmd = [micropython()]
        env["MICROPYPATH"] = ":".join([REPO, HERE, ".frozen"])
    try:
        p = subprocess.run(cmd + [os.path.join(HERE, name + ".py")], cwd=workdir, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return 1, (e.output or b"").decode(errors="replace") + "\n(stopped after %d s)\n" % timeout
    return p.returncode, p.stdout.decode(errors="replace")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run the examples against a private mosquitto on 127.0.0.1.")
    ap.add_argument("names", nargs="*", metavar="NAME", help="examples to run, or all: " + ", ".join(EXAMPLES))
    ap.add_argument("--cpython", action="store_true", help="run on CPython instead of the MicroPython unix port")
    ap.add_argument("--rounds", type=int, default=40, help="main-loop rounds before an example stops (default 40)")
    a = ap.parse_args(argv)
    if not a.names:
        print("examples:", " ".join(EXAMPLES))
        print("run one:  bash examples/run.sh example_pub   (all: bash examples/run.sh all)")
        return 0
    names = EXAMPLES if a.names == ["all"] else a.names
    unknown = [n[:-3] if n.endswith(".py") else n for n in names if (n[:-3] if n.endswith(".py") else n) not in EXAMPLES]
    if unknown:
        ap.error("no example %s; there are: %s" % (", ".join(unknown), ", ".join(EXAMPLES)))
    names = [n[:-3] if n.endswith(".py") else n for n in names]
    interp = "cpython" if a.cpython else "micropython"
    if interp == "micropython":
        micropython()  # say what is missing before starting anything
    failed = []
    with tempfile.TemporaryDirectory(prefix="umqtt-examples-") as d, Broker(os.path.join(d, "broker")) as broker:
        for name in names:
            print("run: examples/%s.py on %s, mosquitto on 127.0.0.1:%d, ROUNDS=%d"
                  % (name, interp, broker.port, a.rounds), flush=True)
            work = os.path.join(d, name)
            os.makedirs(work)
            rc, out = run_example(name, broker.port, interp, a.rounds, work)
            sys.stdout.write(out)
            if rc != 0:
                print("run: examples/%s.py FAILED (exit %s)" % (name, rc), flush=True)
                failed.append(name)
    print("run: %d of %d examples ran to their end%s" % (len(names) - len(failed), len(names),
                                                         "; failed: " + " ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
