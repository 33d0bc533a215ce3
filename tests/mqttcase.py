# Helpers for the client-side test scripts. Runs on MicroPython and CPython alike:
# every integration test is a script that imports this, runs under both interpreters
# against a real broker, and prints OK at its end. The broker's address comes from
# the environment (the pytest side sets it).
import os
import sys
import time

try:
    from time import ticks_ms, ticks_diff, sleep_ms
except ImportError:
    from umqtt._cpython import ticks_ms, ticks_diff

    def sleep_ms(ms):
        time.sleep(ms / 1000)


from umqtt import errno
from umqtt.simple2 import MQTTClient, MQTTException

MICROPYTHON = sys.implementation.name == "micropython"
HOST = os.getenv("MQTT_HOST") or "127.0.0.1"
PORT = int(os.getenv("MQTT_PORT") or 1883)
USER = os.getenv("MQTT_USER") or None  # amqtt needs one
BROKER = os.getenv("MQTT_BROKER") or "mosquitto"
RUN = os.getenv("MQTT_RUN") or "r"  # unique per test run: topics and client ids differ


def env(name, default=None):
    return os.getenv(name) or default


def read(path):
    with open(path, "rb") as f:
        return f.read()


def name(s):
    # a topic or client id private to this test run
    return "%s-%s" % (RUN, s)


def client(cid, cls=MQTTClient, **kw):
    kw.setdefault("port", PORT)
    if USER and "user" not in kw:
        kw["user"] = USER
    return cls(name(cid), HOST, **kw)


_checks = [0]


def check(cond, *what):
    _checks[0] += 1
    if not cond:
        raise AssertionError(" ".join(str(w) for w in what) or "check failed")


def eq(a, b, *what):
    check(a == b, repr(a), "!=", repr(b), *what)


def raises(code, f, *args, **kw):
    """f(*args) must raise MQTTException(code)."""
    try:
        f(*args, **kw)
    except MQTTException as e:
        eq(e.args[0], code, "wrong error code from", f)
        return e
    raise AssertionError("no MQTTException(%d) from %r" % (code, f))


def until(cond, clients=(), ms=5000, what="condition"):
    """Run check_msg() on the clients until cond() is true; fail after ms."""
    t = ticks_ms()
    while not cond():
        for c in clients:
            c.check_msg()
        if ticks_diff(ticks_ms(), t) > ms:
            raise AssertionError("timed out waiting for " + what)
        sleep_ms(1)


def drain(clients, ms):
    """Keep the clients running for ms milliseconds."""
    t = ticks_ms()
    while ticks_diff(ticks_ms(), t) < ms:
        for c in clients:
            c.check_msg()
        sleep_ms(1)


class Inbox:
    """A message callback that records (topic, msg, retained, dup)."""

    def __init__(self):
        self.msgs = []

    def __call__(self, topic, msg, retained, dup):
        check(isinstance(topic, bytes) and isinstance(msg, bytes), "topic and msg are bytes")
        check(retained in (True, False) and dup in (True, False), "flags are bools")
        self.msgs.append((topic, msg, retained, dup))

    def payloads(self):
        return [m[1] for m in self.msgs]


class Status:
    """A status callback that records (pid, status)."""

    def __init__(self):
        self.log = []

    def __call__(self, pid, status):
        self.log.append((pid, status))

    def of(self, pid):
        return [s for p, s in self.log if p == pid]


_asked = [0]


def ask(action, ms=30000):
    """Have the pytest side run one of the test's actions (see conftest.Runner) and
    wait until it has."""
    _asked[0] += 1
    n = _asked[0]
    with open("req.tmp", "w") as f:
        f.write(action)
    os.rename("req.tmp", "req-%d-%s" % (n, action))
    t = ticks_ms()
    while True:
        try:
            os.stat("ack-%d" % n)
            return
        except OSError:
            pass
        if ticks_diff(ticks_ms(), t) > ms:
            raise AssertionError("action %s not done in %d ms" % (action, ms))
        sleep_ms(2)


def done():
    print("OK %d checks" % _checks[0])
