# Helpers for the interop scenario scripts (test_interop.py), on MicroPython and CPython,
# on top of mqttcase.py. The broker under test and its credentials come from the
# environment (interop_brokers.InteropBroker.env()); what it does differently from the
# standard comes from interop_profiles.py.
from mqttcase import *  # noqa: F401,F403
from mqttcase import env, name, client, check, eq, sleep_ms, BROKER
from checks import Rec, drain, until
from interop_profiles import PROFILES

P = PROFILES[BROKER]
USER = env("MQTT_USER")
PASS = env("MQTT_PASS")


def iclient(cid, **kw):
    """A client of this run, logged in the way every scenario on this broker is."""
    if USER:
        kw.setdefault("user", USER)
        kw.setdefault("password", PASS)
    return client(cid, **kw)


def ended(c):
    """c (clean session) disconnects; returns once the broker has dropped its session.
    amqtt drops ended clean sessions in a task that runs once a second: until then a
    clean_session=0 connect finds the old session (profile "session_linger_ms")."""
    c.disconnect()
    if P["session_linger_ms"]:
        sleep_ms(P["session_linger_ms"])


def fresh(cid, **kw):
    """iclient(cid) with no session left on the broker from an earlier run or step."""
    c = iclient(cid, **kw)
    c.connect(clean_session=True)
    ended(c)
    return c


class QInbox(Rec):
    """A message callback that also records the QoS each message was delivered with
    (simple2 gives it in msg_qos while the callback runs): msgs holds (topic, msg,
    retained, dup, qos)."""

    def __init__(self, c, fail_first=0):
        Rec.__init__(self)
        self.c = c
        self.fail = fail_first  # raise in the first n calls: the message stays unacked

    def __call__(self, topic, msg, retained, dup):
        self.msg(topic, msg, retained, dup)
        self.msgs[-1] += (self.c.msg_qos,)
        if self.fail:
            self.fail -= 1
            raise ValueError("application failure")

    def payloads(self):
        return sorted(m[1] for m in self.msgs)


class Pump:
    """Runs check_msg() on clients and records the packet types each returned."""

    def __init__(self, *clients):
        self.clients = clients
        self.types = [[] for _ in clients]
        self.granted = []  # the first return code of each SUBACK (simple2 keeps them in granted)

    def step(self):
        for i, c in enumerate(self.clients):
            r = c.check_msg()
            if r:
                self.types[i].append(r)
                if r == 0x90:
                    self.granted.append(c.granted[0])

    def check_msg(self):  # a Pump runs in checks.until() and drain() as one client
        self.step()

    def until(self, cond, ms=5000, what="condition"):
        until(cond, (self,), ms, what)

    def drain(self, ms):
        drain((self,), ms)


def delivered_qos(pub, sub):
    """The QoS a message published with pub reaches a subscription of QoS sub with, on
    this broker (the standard: min(pub, sub))."""
    d = P["delivered_qos"]
    if d == "sub":  # amqtt: the subscription's QoS, whatever the message's
        return sub
    q = min(pub, sub)
    if d == "max1":  # RabbitMQ: no QoS 2 at all
        q = min(q, 1)
    return q
