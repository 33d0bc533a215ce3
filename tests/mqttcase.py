# Helpers for the client-side test scripts. Runs on MicroPython and CPython alike:
# every integration test is a script that imports this, runs under both interpreters
# against a real broker, and prints OK at its end. The broker's address comes from
# the environment (the pytest side sets it).
import os
import sys
import time  # noqa: F401  (the scripts use it)

from umqtt import errno
from umqtt.simple2 import MQTTClient, MQTTException

# the checks (counted), waits and recorders: one copy for every tier, in checks.py
from checks import (Inbox, Rec, Status, check, checks, drain, eq, raises, short,  # noqa: F401
                    sleep_ms, ticks_diff, ticks_ms, until)

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


def heap_locked(f):
    """Runs f() with MicroPython's heap locked (gc collected first): any allocation in
    it raises MemoryError. f should write no global (a dict that may grow)."""
    import gc
    import micropython

    gc.collect()
    micropython.heap_lock()
    try:
        f()
    finally:
        micropython.heap_unlock()


def done():
    print("OK %d checks" % checks())
