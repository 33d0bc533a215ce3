"""Fixtures: real brokers started by the tests, and a runner that executes a client
script under the MicroPython unix port and under CPython."""
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from brokers import Amqtt, Mosquitto, make_certs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")
VENV_BIN = os.path.dirname(sys.executable)
MICROPYTHON = os.path.join(VENV_BIN, "micropython")
INTERPRETERS = ("micropython", "cpython")


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

    def start(self, body, broker="mosquitto", port=None, env=None, path=REPO):
        """Start the script in the background; returns the Popen."""
        self.n += 1
        f = self.tmp / ("case%d.py" % self.n)
        f.write_text("from mqttcase import *\n" + textwrap.dedent(body) + "\ndone()\n")
        e = {"MQTT_HOST": "127.0.0.1", "MQTT_RUN": uuid.uuid4().hex[:10]}
        e.update(self.env_for(broker, port))
        e.update(env or {})
        return subprocess.Popen(interpreter_cmd(self.interp) + [str(f)], cwd=str(self.tmp),
                                env=script_env(self.interp, path, e), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def __call__(self, body, timeout=60, **kw):
        """Run a client script to its end; it must print OK. Returns its output."""
        p = self.start(body, **kw)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            pytest.fail("%s script hung for %ss:\n%s" % (self.interp, timeout, out))
        if p.returncode != 0 or not out.rstrip().endswith("OK"):
            pytest.fail("%s script failed (exit %s):\n%s" % (self.interp, p.returncode, out))
        return out


@pytest.fixture(params=INTERPRETERS)
def run(request, tmp_path):
    """run(body): the body runs as a client script under MicroPython and CPython."""
    return Runner(request.param, tmp_path, request)
