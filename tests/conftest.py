"""Fixtures: real brokers started by the tests, and a runner that executes a client
script under the MicroPython unix port and under CPython."""
import os
import subprocess
import sys
import textwrap
import threading
import uuid

import pytest

from brokers import Amqtt, Mosquitto, make_certs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")
VENV_BIN = os.path.dirname(sys.executable)
MICROPYTHON = os.path.join(VENV_BIN, "micropython")
INTERPRETERS = ("micropython", "cpython")

# Each test file's tier, its pytest marker (registered in pytest.ini): `bash tests/run.sh
# -m bytes` is the seconds-long inner loop, `-m "not interop and not bench"` skips the
# slow ones. Every tests/test_*.py has exactly one (test_readme.py checks it).
TIERS = {
    "bytes": ("test_bytes.py",),
    "broker": ("test_roundtrip.py", "test_robust.py", "test_tls.py", "test_dropin.py",
               "test_defaults.py", "test_alloc.py"),
    "faults": ("test_network.py", "test_stall.py", "test_soak.py"),
    "fuzz": ("test_fuzz.py",),
    "store": ("test_store.py", "test_powercut.py"),
    "interop": ("test_interop.py",),
    "install": ("test_install.py", "test_examples.py", "test_readme.py", "test_demo.py",
                "test_mpremote.py"),
    "bench": ("test_bench.py", "test_devcost.py"),
}
TIER_OF = dict((f, tier) for tier, files in TIERS.items() for f in files)


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = TIER_OF.get(os.path.basename(str(item.fspath)))
        if tier:
            item.add_marker(getattr(pytest.mark, tier))


def interpreter_cmd(name):
    if name == "micropython":
        if not os.access(MICROPYTHON, os.X_OK):
            pytest.fail("the MicroPython unix port is missing: run tests/setup.sh")
        return [MICROPYTHON]
    return [sys.executable]


def script_env(name, path=REPO, extra=None):
    env = dict(os.environ)
    if name == "micropython":
        env["MICROPYPATH"] = "%s:%s:.frozen" % (path, TESTS)
        env["HOME"] = os.environ.get("HOME", "/tmp")
    else:
        env["PYTHONPATH"] = "%s:%s" % (path, TESTS)
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory, certs):
    m = Mosquitto(str(tmp_path_factory.mktemp("mosquitto")), certs).start()
    yield m
    m.stop()


@pytest.fixture
def own_mosquitto(tmp_path, certs):
    """A mosquitto for one test, which may stop and restart it."""
    m = Mosquitto(str(tmp_path / "mosquitto"), certs)
    yield m
    m.stop()


@pytest.fixture(scope="session")
def amqtt_broker():
    b = Amqtt().start()
    yield b
    b.stop()


class Runner:
    def __init__(self, interp, tmp_path, request):
        self.interp = interp
        self.tmp = tmp_path
        self.request = request
        self.n = 0

    def env_for(self, broker, port):
        if broker == "amqtt":
            b = self.request.getfixturevalue("amqtt_broker")
            return {"MQTT_PORT": str(b.port), "MQTT_USER": "tester", "MQTT_BROKER": "amqtt"}
        m = self.request.getfixturevalue("mosquitto") if broker == "mosquitto" else broker
        return {"MQTT_PORT": str(port or m.port), "MQTT_BROKER": "mosquitto",
                "MQTT_CERTS": m.certs, "MQTT_AUTH_PORT": str(m.auth_port),
                "MQTT_TLS_PORT": str(m.tls_port), "MQTT_MTLS_PORT": str(m.mtls_port)}

    def start(self, body, broker="mosquitto", port=None, env=None, path=REPO, prelude="", mp_args=()):
        """Start the script in the background; returns the Popen. mp_args: options for
        MicroPython only (e.g. "-X", "heapsize=128k")."""
        self.n += 1
        f = self.tmp / ("case%d.py" % self.n)
        f.write_text("from mqttcase import *\n" + textwrap.dedent(prelude) + "\n"
                     + textwrap.dedent(body) + "\ndone()\n")
        e = {"MQTT_HOST": "127.0.0.1", "MQTT_RUN": uuid.uuid4().hex[:10]}
        e.update(self.env_for(broker, port))
        e.update(env or {})
        cmd = interpreter_cmd(self.interp) + (list(mp_args) if self.interp == "micropython" else [])
        return subprocess.Popen(cmd + [str(f)], cwd=str(self.tmp),
                                env=script_env(self.interp, path, e), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def __call__(self, body, timeout=60, actions=None, **kw):
        """Run a client script to its end; it must end printing "OK <n> checks" with n > 0
        (a script that checked nothing proves nothing). Returns its output.
        actions: {name: function} the script can have run on this side with ask(name)
        (start or stop a broker, switch a proxy's mode, ...)."""
        p = self.start(body, **kw)
        served = Actions(self.tmp, actions or {}, p)
        served.start()
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            pytest.fail("%s script hung for %ss:\n%s" % (self.interp, timeout, out))
        finally:
            served.stop()
        if served.error:
            pytest.fail("action failed: %r\n%s" % (served.error, out))
        last = out.rstrip().rsplit("\n", 1)[-1]
        if p.returncode != 0 or not last.startswith("OK") or last == "OK 0 checks":
            pytest.fail("%s script failed (exit %s):\n%s" % (self.interp, p.returncode, out))
        return out


class Actions(threading.Thread):
    """Serves the script's ask(name): it writes req-N-name in its working directory,
    this runs actions[name]() and answers with ack-N."""

    def __init__(self, d, actions, proc):
        super().__init__(daemon=True)
        self.dir, self.actions, self.proc = d, actions, proc
        self.error = None
        self.halt = threading.Event()

    def run(self):
        while not self.halt.wait(0.005):
            for f in sorted(os.listdir(self.dir)):
                if f.startswith("req-"):
                    _, n, name = f.split("-", 2)
                    os.remove(os.path.join(self.dir, f))
                    try:
                        self.actions[name]()
                    except Exception as e:  # reported by the test, and the script is stopped
                        self.error = e
                        self.proc.kill()
                        return
                    open(os.path.join(self.dir, "ack-" + n), "w").close()

    def stop(self):
        self.halt.set()
        self.join(10)


@pytest.fixture(params=INTERPRETERS)
def run(request, tmp_path):
    """run(body): the body runs as a client script under MicroPython and CPython."""
    return Runner(request.param, tmp_path, request)
