# The checks and recorders every tier's client-side code uses, once: the byte-level
# cases (bytecases.py), the fuzzer (fuzzcore.py), the scenario scripts (mqttcase.py,
# interopcase.py). Runs on MicroPython and CPython; importing it does nothing else
# (no environment read, no socket patched, nothing of umqtt loaded but its exception
# and, on CPython, its ticks shim).
try:
    from time import sleep_ms, ticks_diff, ticks_ms
except ImportError:  # CPython
    import time

    from umqtt._cpython import ticks_diff, ticks_ms

    def sleep_ms(ms):
        time.sleep(ms / 1000)


from umqtt import MQTTException

CONNACK = b"\x20\x02\x00\x00"  # session present 0, accepted

_checks = [0]  # every check() and eq() counts: a script that checked nothing proves nothing


def checks():
    """How many checks have run in this process."""
    return _checks[0]


def check(cond, *what):
    _checks[0] += 1
    if not cond:
        raise AssertionError(" ".join(str(w) for w in what) or "check failed")


def short(x, n=200):
    """repr(x), cut to n characters (a failing eq() on 40 MB stays readable)."""
    r = repr(x)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


def eq(a, b, *what):
    _checks[0] += 1
    if a != b:  # the reprs only on failure: a and b may be megabytes
        raise AssertionError(" ".join([short(a), "!=", short(b)] + [str(w) for w in what]))


def raises(code, f, *args, **kw):
    """f(*args, **kw) must raise MQTTException with args[0] == code; returns it."""
    try:
        f(*args, **kw)
    except MQTTException as e:
        eq(e.args[0], code, "wrong error code from", f, args)
        return e
    raise AssertionError("no MQTTException(%d) from %r%r" % (code, f, args))


# -- waiting on real clients


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
    """Keep the clients running (check_msg()) for ms milliseconds."""
    t = ticks_ms()
    while ticks_diff(ticks_ms(), t) < ms:
        for c in clients:
            c.check_msg()
        sleep_ms(1)


# -- recording what the callbacks get


class Rec:
    """Both callbacks: rec.msg records messages (topic, msg, retained, dup) in msgs,
    checking their types; rec.stat records statuses (pid, status) in st."""

    def __init__(self):
        self.msgs = []
        self.st = []

    def msg(self, topic, msg, retained, dup):
        check(type(topic) is bytes and type(msg) is bytes, "topic and msg must be bytes")
        check(type(retained) is bool, "retained must be a bool")
        check(type(dup) is bool, "dup must be a bool")
        self.msgs.append((topic, msg, retained, dup))

    def stat(self, pid, status):
        self.st.append((pid, status))

    def payloads(self):
        return [m[1] for m in self.msgs]

    def of(self, pid):
        """The statuses reported for pid, in order."""
        return [s for p, s in self.st if p == pid]


class Inbox(Rec):
    """A Rec that is itself the message callback: c.set_callback(inbox)."""

    def __call__(self, topic, msg, retained, dup):
        self.msg(topic, msg, retained, dup)


class Status(Rec):
    """A Rec that is itself the status callback: c.set_callback_status(st); st.log is
    its list of (pid, status)."""

    def __init__(self):
        Rec.__init__(self)
        self.log = self.st

    def __call__(self, pid, status):
        self.stat(pid, status)


# -- a client connected through the scripted fake network (fakesock.py)


def fake_client(cls=None, **kw):
    """A client of broker.test (keepalive 0 unless given) with a Rec on both callbacks:
    (client, rec). cls: umqtt.simple2's MQTTClient unless given."""
    if cls is None:
        from umqtt.simple2 import MQTTClient as cls
    kw.setdefault("keepalive", 0)
    c = cls(kw.pop("client_id", "cid"), "broker.test", **kw)
    rec = Rec()
    c.set_callback(rec.msg)
    c.set_callback_status(rec.stat)
    return c, rec


def connected(start=None, **kw):
    """A fresh fake network and a client connected through it (CONNECT already taken
    from the write log). Returns (net, client, rec); kw go to fake_client()."""
    import fakesock

    net = fakesock.install(fakesock.START if start is None else start)
    c, rec = fake_client(**kw)
    net.feed(CONNACK)
    eq(c.connect(), 0, "session present")
    net.take()
    return net, c, rec
