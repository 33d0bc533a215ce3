# Byte-level cases for umqtt.simple2 (and, case_r2_*, umqtt.robust2), run through the
# scripted fake network of fakesock.py.
# Runs on MicroPython and CPython: `CASE=case_x micropython tests/bytecases.py` runs one
# case, without CASE every case; test_bytes.py runs each in-process and under MicroPython.
import os
import sys

import fakesock
from fakesock import EOF
from umqtt import errno, simple2
from umqtt.simple2 import MQTTException

from checks import CONNACK, check, connected, eq, raises, short  # noqa: F401
from checks import fake_client as client  # noqa: F401  (the cases' client(**kw): (client, rec))

PINGREQ = b"\xc0\x00"
PINGRESP = b"\xd0\x00"
MQTT4 = "00 04 4d 51 54 54 04"  # CONNECT: protocol name "MQTT", level 4
STARTS = (fakesock.START, -4000)  # clock starts: the second wraps the ticks mid-case
# cases that need more than the MicroPython unix port's default 2 MB heap
HEAPSIZE = {"case_out_remaining_lengths": "40M"}


# -- checks (check, eq, raises, short: checks.py)


def closed(net, c):
    """The client dropped its connection: no socket kept, the fake one closed, and
    every later check_msg() says 'not connected'."""
    check(c.sock is None, "the client kept its socket")
    check(net.sock.closed, "the socket was not closed")
    raises(errno.ECONNOT, c.check_msg)


# -- packets


def h(s):
    """'30 02 00 01' -> bytes"""
    return bytes.fromhex(s.replace(" ", ""))


def varint(n):
    b = bytearray()
    while True:
        if n > 0x7F:
            b.append(n & 0x7F | 0x80)
            n >>= 7
        else:
            b.append(n)
            return bytes(b)


def s16(n):
    return bytes([n >> 8, n & 0xFF])


def mstr(s):
    if isinstance(s, str):
        s = s.encode()
    return s16(len(s)) + s


def packet(op, body):
    return bytes([op]) + varint(len(body)) + body


def pub(topic, msg, qos=0, pid=0, retain=False, dup=False):
    op = 0x30 | qos << 1 | retain | dup << 3
    return packet(op, mstr(topic) + (s16(pid) if qos else b"") + msg)


def ack(op, pid):
    return bytes([op, 2, pid >> 8, pid & 0xFF])


def filler(n):
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def hexpid(s, pid):
    """h() of s with the packet id put where 'PID' stands."""
    return h(s.replace("PID", "%04x" % pid))


# -- a client connected through the fake network


def cut(data, cuts):
    """data as script items, cut at the offsets in cuts with a would-block at each cut."""
    items = []
    i = 0
    for k in cuts:
        items += [data[i:k], None]
        i = k
    items.append(data[i:])
    return items


def splits(n, every=True):
    """The ways to split an n-byte packet: at each boundary alone (a sample of them for
    big packets), then at every boundary at once (for a big packet, at each of the first
    ten and every 61st: a list of 30000 pieces is too much for MicroPython's heap)."""
    if n <= 300:
        r = [[k] for k in range(1, n)]
    else:
        ks = [1, 2, 3, 4, 5, 6, 7, 8, 9, n // 2, n - 3, n - 2, n - 1]
        r = [[k] for k in ks if 0 < k < n]
    if every and n > 2:
        r.append(list(range(1, n)) if n <= 6000 else list(range(1, 10)) + list(range(10, n, 61)))
    return r


def show(cuts):
    if len(cuts) > 4:
        return "cut at %d places" % len(cuts)
    return "cut at %r" % (cuts,)


def each_split(n, test, every=True):
    """test(cuts) for each split of an n-byte packet; a failure says where it was cut."""
    for cuts in splits(n, every):
        try:
            test(cuts)
        except AssertionError as e:
            raise AssertionError("%s: %s" % (show(cuts), e))


def deliver(net, c, data, cuts=(), watch=None):
    """Script data cut at cuts; check_msg() must return None while any of it is still
    unread, and the packet's type on the call that reads its last byte. Returns that."""
    net.feed(*cut(data, cuts))
    calls = 0
    while True:
        r = c.check_msg()
        calls += 1
        if watch:
            watch()
        if not net.pending():
            return r
        check(r is None, "check_msg() returned %r before the packet was complete" % (r,))
        check(calls <= 2 * len(cuts) + 2, "check_msg() makes no progress, %d calls" % calls)


def fails(net, c, code, limit=100000):
    """check_msg() returns None until it raises MQTTException(code)."""
    for i in range(limit):
        try:
            r = c.check_msg()
        except MQTTException as e:
            eq(e.args[0], code, "wrong error code")
            return
        check(r is None, "check_msg() returned %r before failing" % (r,))
    raise AssertionError("no MQTTException(%d)" % code)


# -- connect(): CONNECT out, CONNACK in, its deadlines


def case_out_connect():
    base = "10 0f " + MQTT4 + " 02 0000 0003 636964"
    for kw, will, clean, expect in (
        ({}, None, True, base),
        ({}, None, False, "10 0f " + MQTT4 + " 00 0000 0003 636964"),
        ({"keepalive": 60}, None, True, "10 0f " + MQTT4 + " 02 003c 0003 636964"),
        ({"keepalive": 65535}, None, True, "10 0f " + MQTT4 + " 02 ffff 0003 636964"),
        ({"client_id": ""}, None, True, "10 0c " + MQTT4 + " 02 0000 0000"),
        ({}, ("w/t", "bye", True, 1), True,
         "10 19 " + MQTT4 + " 2e 0000 0003 636964 0003 772f74 0003 627965"),
        ({}, ("w", b"", False, 2), True, "10 14 " + MQTT4 + " 16 0000 0003 636964 0001 77 0000"),
        ({}, (b"w", "m", False, 0), True, "10 15 " + MQTT4 + " 06 0000 0003 636964 0001 77 0001 6d"),
        ({"user": "u", "password": "p"}, None, True,
         "10 15 " + MQTT4 + " c2 0000 0003 636964 0001 75 0001 70"),
        ({"user": "user"}, None, True, "10 15 " + MQTT4 + " 82 0000 0003 636964 0004 75736572"),
        ({"user": ""}, None, True, "10 11 " + MQTT4 + " 82 0000 0003 636964 0000"),
        ({"password": "p"}, None, True, base),  # no password without a user
        ({"client_id": "c", "user": "us", "password": b"pw", "keepalive": 300}, ("t", "m", True, 2),
         False, "10 1b " + MQTT4 + " f4 012c 0001 63 0001 74 0001 6d 0002 7573 0002 7077"),
    ):
        net = fakesock.install()
        c, rec = client(**kw)
        if will:
            c.set_last_will(will[0], will[1], retain=will[2], qos=will[3])
        net.feed(CONNACK)
        eq(c.connect(clean_session=clean), 0)
        eq(net.writes, [h(expect)], "CONNECT in one write()", kw, will)
        eq(net.addrinfo, [("broker.test", 1883)])
        eq(len(net.sockets), 1)
        eq(net.sock.addr, ("10.0.0.1", 1883))
        check(not net.sock.blocking, "the socket is non-blocking")


def case_connect_connack():
    for flags, present in ((0, 0), (1, 1)):
        connack = bytes([0x20, 2, flags, 0])

        def test(cuts):
            net = fakesock.install()
            c, rec = client()
            net.feed(*cut(connack, cuts))
            eq(c.connect(), present, "session present")
            check(c.sock is not None)
            eq(deliver(net, c, PINGRESP), 0xD0, "a packet after the CONNACK")

        each_split(4, test)
    # a CONNACK after some time, within socket_timeout
    net = fakesock.install()
    c, rec = client(socket_timeout=5)
    net.feed(4000, None, CONNACK)
    eq(c.connect(), 0)
    eq(net.clock.elapsed(), 4000)


def case_connect_refused():
    for code in (1, 2, 3, 4, 5, 6, 0x80, 0xFF):
        net = fakesock.install()
        c, rec = client()
        net.feed(bytes([0x20, 2, 0, code]))
        e = raises(20 + code if code < 6 else 20, c.connect)
        if code >= 6:
            eq(e.args, (20, code))
        eq(net.take()[:1], b"\x10", "CONNECT was sent")
        closed(net, c)


def case_connect_not_connack():
    # also a first packet shorter than a CONNACK, then silence: it fails at once
    for first in (ack(0x40, 1), pub("t", b"x"), h("20 03 00 00 00"), h("21 02 00 00"),
                  h("d0 00") + pub("t", b"x"), h("90 03 00 01 00"), h("d0 00"), h("e0 00"), h("30 00")):
        net = fakesock.install()
        c, rec = client(socket_timeout=5)
        net.feed(first)
        try:
            raises(errno.ECONLENGTH, c.connect)
            closed(net, c)
        except AssertionError as e:
            raise AssertionError("first packet %s: %s" % (short(first), e))


def case_connect_timeout_and_eof():
    for script in ((), (h("20 02"),), (h("20"), None, 3000, h("02 00"))):
        net = fakesock.install()
        c, rec = client(socket_timeout=5)
        net.feed(*script)
        raises(errno.ECONTIMEOUT, c.connect)
        check(5000 <= net.clock.elapsed() <= 5100, "gave up after %d ms" % net.clock.elapsed())
        closed(net, c)
    for script in ((EOF,), (h("20 02"), None, EOF)):
        net = fakesock.install()
        c, rec = client(socket_timeout=5)
        net.feed(*script)
        raises(errno.ECONCLOSE, c.connect)
        closed(net, c)


def case_connect_bounded_when_the_connect_packet_trickles():
    net = fakesock.install()
    net.write_plan([1] + [None] * 45, cycle=True)  # a byte now and then
    c, rec = client(socket_timeout=5)
    net.feed(CONNACK)
    raises(errno.ECONTIMEOUT, c.connect)
    check(net.clock.elapsed() <= 5500, "gave up after %d ms" % net.clock.elapsed())
    closed(net, c)


def case_connect_deadline_starts_after_name_resolution():
    net = fakesock.install()
    real = simple2.socket.getaddrinfo

    def slow(*a):
        net.clock.advance(4800)
        return real(*a)

    simple2.socket.getaddrinfo = slow  # (the fake module is new with each install())
    net.write_plan([None] * 5 + [100])  # the CONNECT needs 500 ms
    c, rec = client(socket_timeout=5)
    net.feed(CONNACK)
    eq(c.connect(), 0)


def case_unresolved_name_is_an_oserror():
    net = fakesock.install()
    net.unresolved = True
    c, rec = client()
    try:
        c.connect()
        raise AssertionError("connect() succeeded")
    except OSError:
        pass
    eq(net.sockets, [])
    check(c.sock is None)
    from umqtt.robust2 import MQTTClient as R

    r = R("cid", "broker.test")
    eq(r.connect(), None)  # robust2: a connection issue, not an exception
    check(isinstance(r.conn_issue[0], OSError), r.conn_issue)
    eq(r.reconnect(), None)


# -- connect()'s arguments: the will, keepalive


def case_bad_will_refused():
    net = fakesock.install()
    c, rec = client()
    raises(errno.EARG, c.set_last_will, "w", "m", qos=3)
    raises(errno.EARG, c.set_last_will, "w", "m", qos=-1)
    raises(errno.EARG, c.set_last_will, "w/#", "m")
    raises(errno.EARG, c.set_last_will, "+", "m")
    raises(errno.EARG, c.set_last_will, "", "m")
    net.feed(CONNACK)
    eq(c.connect(), 0)
    eq(net.writes, [h("10 0f " + MQTT4 + " 02 0000 0003 636964")], "no will was kept")


def case_bad_will_message_refused():
    # a will message of a wrong type is refused too, and leaves the will as it was
    for before in (None, ("a", "m1")):
        for msg in (5, None, {}):
            net = fakesock.install()
            c, rec = client()
            if before:
                c.set_last_will(*before)
            raises(errno.EARG, c.set_last_will, "w", msg)
            net.feed(CONNACK)
            eq(c.connect(), 0)
            if before:
                expect = "10 16 " + MQTT4 + " 06 0000 0003 636964 0001 61 0002 6d31"
            else:
                expect = "10 0f " + MQTT4 + " 02 0000 0003 636964"
            eq(net.writes, [h(expect)], "after set_last_will('w', %r), will before: %r" % (msg, before))


def case_will_retain_is_a_flag():
    for retain, flags in ((2, "26"), (None, "06"), (1.0, "26"), ("", "06")):
        net = fakesock.install()
        c, rec = client()
        c.set_last_will("w", b"m", retain=retain)
        net.feed(CONNACK)
        c.connect()
        eq(net.take()[9:10], h(flags), "will retain %r" % (retain,))
    net, c, rec = connected()
    c.publish("t", b"m", retain=None, dup=None)
    eq(net.take(), h("30 04 0001 74 6d"))


def case_will_topic_utf8_checked_at_any_qos():
    c, rec = client()
    for q in (0, 1):
        raises(errno.EARG, c.set_last_will, b"dev/\xff/status", b"offline", qos=q)
    c.set_last_will("dev/\u00e9/status", b"offline")


def case_bad_keepalive_refused():
    for ka in (70000, 65536, -1):
        net = fakesock.install()
        c, rec = client(keepalive=ka)
        net.feed(CONNACK)
        raises(errno.EARG, c.connect)
        eq(net.sockets, [], "a socket was opened with keepalive %d" % ka)
        eq(net.take(), b"")
        check(c.sock is None)


# -- publish and the write path: outgoing bytes, arguments, short and stalled writes


def case_out_publish():
    net, c, rec = connected()
    for args, kw, expect in (
        (("a/b", b"hi"), {}, "30 07 0003 612f62 6869"),
        (("a/b", "hi"), {"retain": True}, "31 07 0003 612f62 6869"),
        ((b"a/b", b""), {}, "30 05 0003 612f62"),
        (("a/b", bytearray(b"hi")), {"qos": 1}, "32 09 0003 612f62 PID 6869"),
        (("a/b", memoryview(b"hi")), {"qos": 1, "retain": True}, "33 09 0003 612f62 PID 6869"),
        (("a/b", b"hi"), {"qos": 1, "dup": True}, "3a 09 0003 612f62 PID 6869"),
        (("a/b", b"hi"), {"qos": 2}, "34 09 0003 612f62 PID 6869"),
        (("a/b", b"hi"), {"qos": 2, "retain": True, "dup": True}, "3d 09 0003 612f62 PID 6869"),
        (("€", "ü"), {}, "30 07 0003 e282ac c3bc"),
    ):
        pid = c.publish(*args, **kw)
        if kw.get("qos"):
            check(pid and pid in c.rcv_pids, "pid %r in flight" % (pid,))
            exp = hexpid(expect, pid)
        else:
            eq(pid, None)
            exp = h(expect)
        eq(net.writes, [exp], "PUBLISH in one write()", args, kw)
        net.take()
    eq(len(c.rcv_pids), 5, "five flows in flight")


def case_out_remaining_lengths():
    net, c, rec = connected()
    for rem, head in ((126, "30 7e"), (127, "30 7f"), (128, "30 80 01"), (16383, "30 ff 7f"),
                      (16384, "30 80 80 01"), (2097151, "30 ff ff 7f"), (2097152, "30 80 80 80 01")):
        payload = filler(rem - 3)
        c.publish("t", payload)
        if rem == 126:
            eq(len(net.writes), 1, "a 128-byte packet goes out in one write()")
        out = net.take()
        n = len(h(head))
        eq(len(out), n + rem, "packet length, remaining length %d" % rem)
        eq(out[: n + 3], h(head) + b"\x00\x01t", "remaining length %d" % rem)
        check(out[-len(payload) :] == payload, "payload of %d bytes differs" % len(payload))
        out = payload = None


def case_out_ping_disconnect():
    net, c, rec = connected()
    c.ping()
    eq(net.writes, [PINGREQ])
    net.take()
    c.disconnect()
    eq(net.writes, [h("e0 00")])
    net.take()
    closed(net, c)
    raises(errno.ECONNOT, c.publish, "a", b"x")
    raises(errno.ECONNOT, c.ping)
    c.disconnect()  # again: nothing happens
    eq(net.take(), b"")


def case_bad_arguments_refused():
    net, c, rec = connected()

    def refused(code, f, *args, **kw):
        raises(code, f, *args, **kw)
        eq(net.take(), b"", "bytes written by a refused call", f, args, kw)

    for q in (3, -1, "1", None):
        refused(errno.EARG, c.publish, "a/b", b"x", qos=q)
    for t in ("a/+", "a/#", "#", "+", "a+b", "a#", "", b"", "a\x00b", b"\x00"):
        refused(errno.EARG, c.publish, t, b"x")
    refused(errno.ESTRTOLONG, c.publish, "a" * 65536, b"x")
    refused(errno.ESTRTOLONG, c.publish, "é" * 32768, b"x")  # 32768 characters, 65536 bytes
    for bad in (1, None, {}, 1.5, ["a"]):
        refused(errno.EARG, c.publish, bad, b"x")
        refused(errno.EARG, c.publish, "a/b", bad)
        refused(errno.EARG, c.publish, "a/b", bad, qos=1)
    for f in ("a/#/b", "a+", "#a", "a/b#", "", "+a", "a/+b", "a/#/", "a\x00"):
        refused(errno.EARG, c.subscribe, f)
        refused(errno.EARG, c.subscribe, [("ok", 0), (f, 0)])
        refused(errno.EARG, c.unsubscribe, f)
        refused(errno.EARG, c.unsubscribe, ["ok", f])
    refused(errno.ESTRTOLONG, c.subscribe, "a" * 65536)
    for q in (3, -1, "1"):
        refused(errno.EARG, c.subscribe, "a", q)
        refused(errno.EARG, c.subscribe, [("a", 0), ("b", q)])
    for bad in (1, None, 2.0, [], [1]):
        refused(errno.EARG, c.unsubscribe, bad)
    refused(errno.EARG, c.subscribe, [])
    eq(c.rcv_pids, {}, "no packet id taken by a refused call")
    eq(rec.msgs + rec.st, [])
    # the connection is still usable
    check(c.sock is not None and not net.sock.closed, "the connection was dropped")
    c.publish("a/b", b"ok")
    eq(net.take(), h("30 07 0003 612f62 6f6b"))
    t = "€" * 21845  # 65535 bytes: the longest topic
    c.publish(t, b"x")
    eq(net.take(), pub(t, b"x"))
    for f in ("#", "+", "a/+/b", "+/+", "a/#", "/", "+/#", "a//b", "/+/"):
        pid = c.subscribe(f, 1)
        eq(net.take(), packet(0x82, s16(pid) + mstr(f) + b"\x01"), "valid filter " + f)
        pid = c.unsubscribe(f)
        eq(net.take(), packet(0xA2, s16(pid) + mstr(f)), "valid filter " + f)
    # topics and filters as bytearray or memoryview, and refused as such too
    for kind in (bytearray, memoryview):
        pid = c.subscribe(kind(b"a/+"), 1)
        eq(net.take(), packet(0x82, s16(pid) + mstr("a/+") + b"\x01"), "filter as", kind)
        c.publish(kind(b"a/b"), kind(b"ok"))
        eq(net.take(), h("30 07 0003 612f62 6f6b"), "topic as", kind)
        refused(errno.EARG, c.subscribe, kind(b"a/#/b"))
        refused(errno.EARG, c.publish, kind(b"a/+"), b"x")


def case_flag_arguments_and_types():
    net, c, rec = connected()
    c.publish("t", b"m", retain=2, dup=2)
    eq(net.take(), h("31 04 0001 74 6d"), "retain is a bit; QoS 0 never has DUP [MQTT-3.3.1-2]")
    pid = c.publish("t", b"m", qos=1, dup=2)
    eq(net.take(), hexpid("3a 06 0001 74 PID 6d", pid), "DUP on a QoS 1 re-send")
    for q in (1.0, True):
        raises(errno.EARG, c.publish, "t", b"m", qos=q)
        raises(errno.EARG, c.subscribe, "t", q)
    eq(net.take(), b"")
    net = fakesock.install()
    c, rec = client(keepalive=60.0)
    net.feed(CONNACK)
    raises(errno.EARG, c.connect)
    eq(net.sockets, [])
    net = fakesock.install()
    c, rec = client()
    net.feed(CONNACK)
    c.connect(clean_session=2)
    eq(net.take(), h("10 0f " + MQTT4 + " 02 0000 0003 636964"), "clean session, no will flag")


def case_publish_pid_checked_before_writing():
    net, c, rec = connected()
    for p in (65536, -1, "7", 1.0):
        raises(errno.EARG, c.publish, "t" * 200, b"x", qos=1, pid=p)
    eq(net.take(), b"")
    eq(c.rcv_pids, {})
    check(c.sock is not None)
    eq(c.publish("t", b"m", pid=5), None, "QoS 0 has no packet id")


def case_publish_refused_draws_no_pid():
    # a QoS 1 publish() refused (not connected) leaves the pids as they were: the next
    # one that goes out is pid 1
    net, c, rec = connected()
    c.disconnect()
    raises(errno.ECONNOT, c.publish, "t", b"m", qos=1)
    net = fakesock.install()
    net.feed(CONNACK)
    c.connect()
    eq(c.publish("t", b"m", qos=1), 1)


def case_topic_utf8_checked():
    net, c, rec = connected()
    for t in (b"a\xff", b"\xc3", bytearray(b"a\x80b")):
        raises(errno.EARG, c.publish, t, b"x", qos=1)
        raises(errno.EARG, c.subscribe, t)
        raises(errno.EARG, c.unsubscribe, [t])
        raises(errno.EARG, c.set_last_will, t, b"x", qos=1)
    eq(net.take(), b"")
    c.publish(b"caf\xc3\xa9", b"x", qos=1)  # valid UTF-8 goes
    c.subscribe("caf\u00e9/+")
    check(len(net.take()) > 20)


def case_short_writes():
    big = filler(300)
    for plan, cycle, wmax in (
        ([], False, 1),
        ([None, 3], True, 0),
        ([None, None, 1, None, 7], True, 0),
        ([None] * 5 + [2], False, 5),
    ):
        net = fakesock.install()
        net.write_plan(plan, cycle)
        net.wmax = wmax
        c, rec = client(user="u", password="p")
        net.feed(CONNACK)
        eq(c.connect(), 0)
        what = "plan %r wmax %d" % (plan, wmax)
        eq(net.take(), h("10 15 " + MQTT4 + " c2 0000 0003 636964 0001 75 0001 70"), what)
        pid = c.publish("a/b", big, qos=1)
        eq(net.take(), pub("a/b", big, 1, pid), what)
        pid = c.subscribe([("a/+", 1), ("b", 2)])
        eq(net.take(), hexpid("82 0c PID 0003 612f2b 01 0001 62 02", pid), what)
        eq(deliver(net, c, pub("in", b"x", 2, 0x4242)), 0x30)
        eq(net.take(), h("50 02 42 42"), what)
        c.ping()
        eq(net.take(), PINGREQ, what)
        check(net.clock.elapsed() < 5000, "a socket_timeout passed", what)
        check(c.sock is not None, what)


def case_write_never_completes():
    for plan, what in (([], "nothing accepted"), ([5], "5 bytes, then nothing"),
                       ([1, None, 1], "2 bytes, then nothing")):
        net, c, rec = connected(socket_timeout=2)
        net.write_plan(plan)
        net.wmax = 0
        t = net.clock.elapsed()
        raises(errno.ECONTIMEOUT, c.publish, "a/b", b"x" * 50, qos=1)
        waited = net.clock.elapsed() - t
        check(2000 <= waited <= 2500, "gave up after %d ms, socket_timeout 2 s" % waited, what)
        closed(net, c)
    # the same during connect(): the CONNECT never goes out
    net = fakesock.install()
    net.wmax = 0
    c, rec = client(socket_timeout=1)
    net.feed(CONNACK)
    raises(errno.ECONTIMEOUT, c.connect)
    check(1000 <= net.clock.elapsed() <= 1500, "gave up after %d ms" % net.clock.elapsed())
    closed(net, c)


def case_write_deadline_is_per_packet_not_per_write():
    # a 400-byte PUBLISH is written in several write() calls (the 128-byte buffer, then
    # the payload); each piece 1.9 s after the last: the packet is late after 2 s
    wait = [None] * 19
    net, c, rec = connected(socket_timeout=2)
    net.write_plan(wait + [5] + wait + [200] + wait + [2] + wait + [200])
    t = net.clock.elapsed()
    raises(errno.ECONTIMEOUT, c.publish, "t" * 200, b"x" * 200, qos=1)
    waited = net.clock.elapsed() - t
    check(2000 <= waited <= 2200, "gave up after %d ms, socket_timeout 2 s" % waited)
    closed(net, c)
    # connect(): the TCP connect's time counts too
    net = fakesock.install()
    real = fakesock.FakeSocket.connect

    def slow(sock, addr):
        net.clock.advance(4500)
        real(sock, addr)

    fakesock.FakeSocket.connect = slow
    try:
        net.write_plan([None] * 100 + [100])  # the CONNECT needs 1 s more (10 ms polls)
        c, rec = client(socket_timeout=5)
        net.feed(CONNACK)
        raises(errno.ECONTIMEOUT, c.connect)
        check(net.clock.elapsed() <= 5200, "gave up after %d ms" % net.clock.elapsed())
        closed(net, c)
    finally:
        fakesock.FakeSocket.connect = real


def case_write_deadline_not_overshot():
    for st, most in ((0.25, 250), (1, 1000), (0.01, 10)):
        net, c, rec = connected(socket_timeout=st)
        net.wmax = 0
        net.write_plan([])
        t = net.clock.elapsed()
        raises(errno.ECONTIMEOUT, c.publish, "t", b"x", qos=1)
        waited = net.clock.elapsed() - t
        check(waited <= most, "gave up after %d ms, socket_timeout %d ms" % (waited, most))


# -- receiving: the parser, each packet split at every byte boundary


def case_in_publish_split():
    for pkt, msg, out in (
        (b"\x30\x08\x00\x03a/bhey", (b"a/b", b"hey", False, False), b""),
        (b"\x31\x05\x00\x03a/b", (b"a/b", b"", True, False), b""),
        (b"\x32\x0a\x00\x03a/b\x12\x34hey", (b"a/b", b"hey", False, False), h("40 02 12 34")),
        (b"\x3b\x0a\x00\x03a/b\x12\x34hey", (b"a/b", b"hey", True, True), h("40 02 12 34")),
        (b"\x34\x0a\x00\x03a/b\x00\x07hey", (b"a/b", b"hey", False, False), h("50 02 00 07")),
        (b"\x3d\x09\x00\x01t\xff\xfehey!", (b"t", b"hey!", True, True), h("50 02 ff fe")),
        (pub("ż/€", "gęś".encode(), 1, 0x0100), ("ż/€".encode(), "gęś".encode(), False, False),
         h("40 02 01 00")),
    ):

        def test(cuts):
            net, c, rec = connected()
            eq(deliver(net, c, pkt, cuts), 0x30)
            eq(rec.msgs, [msg])
            eq(net.take(), out, "the acknowledgement")
            eq(rec.st, [])

        each_split(len(pkt), test)


def qos1_flow(net, c):
    return c.publish("t", b"x", qos=1)


def qos2_flow(net, c):
    # PUBLISH QoS 2, then PUBREC: what remains in flight waits for PUBCOMP
    pid = c.publish("t", b"x", qos=2)
    eq(deliver(net, c, ack(0x50, pid)), 0x50)
    return pid


def unsub_flow(net, c):
    return c.unsubscribe("t")


def case_in_puback_pubcomp_unsuback_split():
    for op, flow in ((0x40, qos1_flow), (0x70, qos2_flow), (0xB0, unsub_flow)):

        def test(cuts):
            net, c, rec = connected()
            pid = flow(net, c)
            net.take()
            eq(deliver(net, c, ack(op, pid), cuts), op)
            eq(rec.st, [(pid, 1)])
            eq(c.rcv_pids, {}, "the flow is over")
            other = pid ^ 0x5A5A
            eq(deliver(net, c, ack(op, other), cuts), op)
            eq(rec.st, [(pid, 1), (other, 2)], "an unknown packet id")
            eq(deliver(net, c, ack(op, pid), cuts), op)
            eq(rec.st, [(pid, 1), (other, 2), (pid, 2)], "an answer that came twice")
            eq(net.take(), b"", "nothing is answered")

        try:
            each_split(4, test)
        except AssertionError as e:
            raise AssertionError("packet type %#x: %s" % (op, e))


def case_in_pubrec_split():
    def test(cuts):
        net, c, rec = connected()
        pid = c.publish("t", b"x", qos=2)
        net.take()
        eq(deliver(net, c, ack(0x50, pid), cuts), 0x50)
        eq(net.take(), ack(0x62, pid), "PUBREL")
        eq(rec.st, [])
        check(pid in c.rcv_pids, "the flow waits for PUBCOMP")
        eq(deliver(net, c, ack(0x70, pid), cuts), 0x70)
        eq(rec.st, [(pid, 1)])
        eq(c.rcv_pids, {})

    each_split(4, test)


def case_in_pubrel_split():
    def test(cuts):
        net, c, rec = connected()
        eq(deliver(net, c, h("62 02 00 07"), cuts), 0x60)
        eq(net.take(), h("70 02 00 07"), "PUBCOMP")
        eq(deliver(net, c, h("62 02 ab cd"), cuts), 0x60)
        eq(net.take(), h("70 02 ab cd"), "PUBCOMP")
        eq(rec.msgs + rec.st, [])

    each_split(4, test)


def case_in_suback_split():
    subs = [("a", 0), ("b/+", 1), ("c/#", 2), ("d", 1)]
    for codes, statuses in (("00", [1]), ("01 02 00 80", [1, 1, 1, 3]), ("80 80", [3, 3])):
        codes = h(codes)

        def test(cuts):
            net, c, rec = connected()
            pid = c.subscribe(subs[: len(codes)])
            net.take()
            eq(deliver(net, c, packet(0x90, s16(pid) + codes), cuts), 0x90)
            eq(rec.st, [(pid, s) for s in statuses], "one status per return code")
            eq(c.rcv_pids, {})
            eq(net.take(), b"")

        each_split(4 + len(codes), test)


def case_in_pingresp_split():
    def test(cuts):
        net, c, rec = connected()
        eq(deliver(net, c, PINGRESP, cuts), 0xD0)
        eq(net.take(), b"")
        eq(rec.msgs + rec.st, [])

    each_split(2, test)


def case_in_remaining_lengths_split():
    # PUBLISH QoS 1 "big", pid 0x0102: 7 bytes before the payload
    for rem, head in ((127, "32 7f"), (128, "32 80 01"), (16383, "32 ff 7f"), (16384, "32 80 80 01")):
        payload = filler(rem - 7)
        pkt = pub("big", payload, 1, 0x0102)
        eq(pkt[: len(h(head))], h(head), "the test's own encoding")

        def test(cuts):
            net, c, rec = connected()
            eq(deliver(net, c, pkt, cuts), 0x30)
            eq(len(rec.msgs), 1)
            eq(rec.msgs[0][0], b"big")
            check(rec.msgs[0][1] == payload, "payload of %d bytes differs" % len(payload))
            eq(net.take(), h("40 02 01 02"))

        try:
            each_split(len(pkt), test)
        except AssertionError as e:
            raise AssertionError("remaining length %d: %s" % (rem, e))


def case_in_several_packets_one_chunk():
    # one chunk, several packets: one packet handled per check_msg(), in order; with
    # rmax the fake hands them out a few bytes per read, and check_msg() may need more calls
    for rmax in (0, 1, 3):
        net, c, rec = connected()
        pid = c.subscribe("s/#", 1)
        net.take()
        net.rmax = rmax
        net.feed(
            pub("s/a", b"1", 1, 0x0A0A)
            + PINGRESP
            + packet(0x90, s16(pid) + b"\x01")
            + pub("s/b", b"2")  # a topic as long as the last, then the first again
            + pub("s/a", b"3", 2, 0x0B0B)
            + h("62 02 0b 0b")
            + pub("s/a", b"4")
        )
        steps = [
            (0x30, 1, 0, h("40 02 0a 0a")),
            (0xD0, 1, 0, b""),
            (0x90, 1, 1, b""),
            (0x30, 2, 1, b""),
            (0x30, 3, 1, h("50 02 0b 0b")),
            (0x60, 3, 1, h("70 02 0b 0b")),
            (0x30, 4, 1, b""),
        ]
        for op, nmsgs, nst, out in steps:
            r = c.check_msg()
            for i in range(20 if rmax else 0):
                if r is not None:
                    break
                r = c.check_msg()
            eq((r, len(rec.msgs), len(rec.st), net.take()), (op, nmsgs, nst, out), "rmax", rmax)
        eq(c.check_msg(), None)
        eq(net.pending(), [])
        eq(rec.msgs, [(b"s/a", b"1", False, False), (b"s/b", b"2", False, False),
                      (b"s/a", b"3", False, False), (b"s/a", b"4", False, False)])
        eq(rec.st, [(pid, 1)])


def case_in_topic_reused_only_while_it_repeats():
    # The last topic received is reused while it repeats. One that starts as the last
    # one (its prefix, the rest of whose bytes the payload happens to repeat) is a new
    # one; so is the same topic after the buffer was replaced for a big message.
    net, c, rec = connected()
    sent = [(b"abc", b"1", 0), (b"ab", b"c5", 0), (b"abc", b"2", 1), (b"ab", b"c\x00", 1),
            (b"ab", filler(100), 0), (b"ab", b"3", 0), (b"abc", b"4", 2)]
    for t, m, q in sent:
        eq(deliver(net, c, pub(t, m, q, 7 if q else 0)), 0x30)
    eq([x[:2] for x in rec.msgs], [(t, m) for t, m, q in sent])


# -- receiving: the broker closes, or sends something malformed


def case_eof_mid_packet():
    pkt = b"\x32\x0a\x00\x03a/b\x12\x34hey"
    for k in range(len(pkt)):  # k == 0: EOF between packets
        for gap in ((), (None,), (None, None)):
            net, c, rec = connected()
            net.feed(pkt[:k], *gap)
            net.feed(EOF)
            try:
                fails(net, c, errno.ECONCLOSE)
                eq(rec.msgs + rec.st, [])
                eq(net.take(), b"")
                closed(net, c)
            except AssertionError as e:
                raise AssertionError("EOF after %d bytes, %r: %s" % (k, gap, e))


def malformed(pid):
    return [
        ("5-byte remaining length", h("30 ff ff ff ff 7f")),
        ("5-byte remaining length, PINGRESP", h("d0 80 80 80 80 00")),
    ] + [
        ("packet type %#x" % op, bytes([op, 2, 0, 1]))
        for op in (0x00, 0x10, 0x20, 0x80, 0xA0, 0xC0, 0xE0, 0xF0)
    ] + [
        ("PUBACK with flags", h("41 02 00 01")),
        ("PUBREL without flags", h("60 02 00 01")),
        ("SUBACK with flags", h("91 03") + s16(pid) + b"\x00"),
        ("PINGRESP with flags", h("d1 00")),
        ("PUBLISH QoS 3", b"\x36\x05\x00\x01a\x00\x01"),
        ("PUBACK of length 3", h("40 03 00 01 00")),
        ("PINGRESP of length 1", h("d0 01 00")),
        ("SUBACK of length 2", h("90 02") + s16(pid)),
        ("SUBACK return code 3", h("90 03") + s16(pid) + b"\x03"),
        ("PUBLISH QoS 1 with packet id 0", b"\x32\x06\x00\x01a\x00\x00x"),
        ("PUBLISH QoS 2 with packet id 0", b"\x34\x05\x00\x01a\x00\x00"),
        ("PUBLISH topic longer than the packet", b"\x30\x03\x00\x05a"),
        ("PUBLISH QoS 1 topic and pid longer than the packet", b"\x32\x05\x00\x02ab\x00"),
        ("PUBLISH of length 1", b"\x30\x01\x00"),
    ]


def case_malformed_input():
    for i in range(len(malformed(1))):
        for every in (False, True):
            net, c, rec = connected()
            pid = c.subscribe("x")
            net.take()
            what, data = malformed(pid)[i]
            try:
                net.feed(*cut(data, range(1, len(data)) if every else ()))
                fails(net, c, errno.EPROTO)
                eq(rec.msgs + rec.st, [], "callbacks")
                eq(net.take(), b"", "bytes written")
                closed(net, c)
            except AssertionError as e:
                raise AssertionError("%s %s%s: %s" % (what, short(data), " byte by byte" * every, e))


def case_malformed_connack_flags_and_empty_topic_in():
    net = fakesock.install()
    c, rec = client()
    net.feed(h("20 02 ff 00"))
    raises(errno.EPROTO, c.connect)
    closed(net, c)
    net, c, rec = connected()
    net.feed(pub("", b"m"))
    raises(errno.EPROTO, c.check_msg)
    eq(rec.msgs, [])
    closed(net, c)


# -- receiving: max_size, and a message the heap cannot hold


def case_max_size_skips_big_publish():
    M = 100
    nxt = pub("n", b"next", 1, 0x0304)
    for qos in (0, 1, 2):
        for rem in (M + 1, M + 2, 5000):
            pid = 0x0203 if qos else 0
            pkt = pub("big/t", filler(rem - 7 - (2 if qos else 0)), qos, pid)
            eq(len(pkt), rem + (2 if rem < 128 else 3))

            def test(cuts):
                net, c, rec = connected(max_size=M)

                def watch():
                    check(len(c._in) <= M, "the receive buffer grew to %d" % len(c._in))

                eq(deliver(net, c, pkt, cuts, watch), 0x30)
                eq(rec.msgs, [], "a message over max_size is not delivered")
                eq(rec.st, [(pid, 4)])
                eq(net.take(), [b"", ack(0x40, pid), ack(0x50, pid)][qos], "acknowledged")
                eq(deliver(net, c, nxt, (), watch), 0x30)
                eq(rec.msgs, [(b"n", b"next", False, False)], "the next packet")
                eq(net.take(), h("40 02 03 04"))

            try:
                each_split(len(pkt), test)
            except AssertionError as e:
                raise AssertionError("QoS %d, remaining length %d: %s" % (qos, rem, e))
    # exactly max_size is delivered
    for qos in (0, 1):
        net, c, rec = connected(max_size=M)
        msg = filler(M - 7 - 2 * qos)
        eq(deliver(net, c, pub("big/t", msg, qos, 9)), 0x30)
        eq(rec.msgs, [(b"big/t", msg, False, False)])
        eq(rec.st, [])
        check(len(c._in) <= M, "the receive buffer grew to %d" % len(c._in))


def case_max_size_topic_too_big():
    M = 100
    for qos in (0, 1):
        pkt = pub("t" * 150, b"x" * 50, qos, 5)
        for cuts in ([], list(range(1, len(pkt)))):
            net, c, rec = connected(max_size=M)
            net.feed(*cut(pkt, cuts))
            fails(net, c, errno.ETOOBIG)
            eq(rec.msgs, [])
            eq(net.take(), b"")
            check(len(c._in) <= M, "the receive buffer grew to %d" % len(c._in))
            closed(net, c)


def case_message_the_heap_cannot_hold_is_skipped_and_reported():
    # growing the buffer for it fails: the message is skipped (its QoS 1 answered and
    # reported SOVERSIZE with the broker's pid), the link stays up, the next one comes
    net, c, rec = connected()
    real = bytearray
    failing = [1]

    def ba(*a):
        if failing and a and a[0] == 1000:
            failing.pop()
            raise MemoryError
        return real(*a)

    simple2.bytearray = ba
    try:
        net.feed(pub("t", filler(995), qos=1, pid=7), pub("t2", b"after"))
        got = [c.check_msg() for i in range(8)]
        eq([r for r in got if r], [0x30, 0x30], "both messages handled")
        eq(rec.st, [(7, errno.SOVERSIZE)])
        eq(net.take(), ack(0x40, 7), "and acknowledged")
        check(c.sock is not None)
        eq([(t, len(m)) for t, m, r, d in rec.msgs], [(b"t2", 5)], "the next one came")
    finally:
        del simple2.bytearray


# -- time: keep-alive, message_timeout, wait_msg


def case_keepalive():
    for start in STARTS:
        net, c, rec = connected(start=start, keepalive=10)
        clk = net.clock
        clk.advance(7499)
        eq(c.check_msg(), None)
        eq(net.take(), b"", "PINGREQ before 7.5 s")
        clk.advance(50)  # the timers are looked at every 50 ms at most
        eq(c.check_msg(), None)
        eq(net.take(), PINGREQ)
        clk.advance(7450)  # no PINGRESP yet, and nothing sent for 7.45 s
        eq(c.check_msg(), None)
        eq(net.take(), b"")
        clk.advance(50)  # 7.5 s: a second PINGREQ keeps the broker's timer going
        eq(c.check_msg(), None)
        eq(net.take(), PINGREQ)
        clk.advance(2499)  # 9.999 s after the first PINGREQ: not dead yet
        eq(c.check_msg(), None)
        eq(net.take(), b"")
        clk.advance(50)  # 10.049 s after the first PINGREQ: the link is dead
        raises(errno.EKEEPALIVE, c.check_msg)
        closed(net, c)

        # a PINGRESP clears it; the next PINGREQ comes 7.5 s after the last one
        net, c, rec = connected(start=start, keepalive=10)
        clk = net.clock
        clk.advance(7501)
        c.check_msg()
        eq(net.take(), PINGREQ)
        clk.advance(5000)
        eq(deliver(net, c, PINGRESP), 0xD0)
        clk.advance(2498)
        eq(c.check_msg(), None)
        eq(net.take(), b"")
        clk.advance(50)
        eq(c.check_msg(), None)
        eq(net.take(), PINGREQ, "the second PINGREQ")
        clk.advance(5000)
        eq(deliver(net, c, PINGRESP), 0xD0)
        clk.advance(7000)  # 12 s after the second PINGREQ: answered, no error; a third one
        eq(c.check_msg(), None)
        eq(net.take(), PINGREQ)
        check(c.sock is not None)

        # sending (and hearing back) keeps the link alive without PINGREQ
        net, c, rec = connected(start=start, keepalive=10)
        clk = net.clock
        clk.advance(5000)
        pid = c.publish("a", b"x", qos=1)
        eq(deliver(net, c, ack(0x40, pid)), 0x40)
        net.take()
        clk.advance(7499)
        eq(c.check_msg(), None)
        eq(net.take(), b"", "PINGREQ 7.499 s after the last packet sent")
        clk.advance(50)
        eq(c.check_msg(), None)
        eq(net.take(), PINGREQ)


def case_keepalive_spares_a_big_message_arriving_slowly():
    # keepalive 1 s, a 1006-byte PUBLISH at 20 bytes every 100 ms: the PINGRESP is
    # behind it, the bytes show the link lives
    net, c, rec = connected(keepalive=1)
    pkt = pub("t", filler(1000))
    items = []
    for i in range(0, len(pkt), 20):
        items += [pkt[i : i + 20], 100]
    net.feed(*items)
    net.feed(PINGRESP)
    r = None
    while r != 0x30:
        r = c.wait_msg()
    eq(len(rec.msgs), 1)
    eq(c.wait_msg(), 0xD0)
    check(c.sock is not None)
    # meanwhile a PINGREQ went out 750 ms after the last: the broker's timer never ran out
    ts = net.wtimes
    check(len(ts) > 4 and max(b - a for a, b in zip([0] + ts, ts)) <= 800, "writes at %r" % ts)
    # and a link that goes silent mid-packet is still found dead
    net, c, rec = connected(keepalive=1)
    net.feed(pkt[:100])
    c.check_msg()
    net.clock.advance(800)
    c.check_msg()
    eq(net.take(), PINGREQ)
    net.clock.advance(1001)
    raises(errno.EKEEPALIVE, c.check_msg)


def case_half_open_link_found_within_1_75_keepalive_while_publishing():
    # QoS 0 every 100 ms, nothing ever comes back: PINGREQ after 7.5 s without a
    # packet in, the link dead 10 s later at most
    net, c, rec = connected(keepalive=10)
    pings = []
    for i in range(200):
        net.clock.advance(100)
        c.publish("t", b"x")
        try:
            c.check_msg()
        except MQTTException as e:
            eq(e.args[0], errno.EKEEPALIVE)
            break
        if net.take().endswith(PINGREQ):
            pings.append(net.clock.elapsed())
    check(pings and 7500 <= pings[0] <= 7600, "PINGREQ at %r ms" % pings)
    check(net.clock.elapsed() <= 17600, "dead after %d ms" % net.clock.elapsed())


def case_message_timeout():
    for start in STARTS:
        net, c, rec = connected(start=start, message_timeout=3)
        clk = net.clock
        pid = c.publish("a", b"x", qos=1)
        clk.advance(2999)
        c.check_msg()
        eq(rec.st, [])
        check(pid in c.rcv_pids)
        clk.advance(50)  # timeouts are looked for every 50 ms at most
        c.check_msg()
        eq(rec.st, [(pid, 0)])
        check(pid not in c.rcv_pids, "a timed-out flow stays in rcv_pids")
        clk.advance(10000)
        c.check_msg()
        eq(rec.st, [(pid, 0)], "the timeout is reported once")
        eq(deliver(net, c, ack(0x40, pid)), 0x40)
        eq(rec.st, [(pid, 0), (pid, 2)], "a late PUBACK")
        eq(net.take(), pub("a", b"x", 1, pid), "only the PUBLISH was written")


def case_timeout_callback_publishes():
    net, c, rec = connected(message_timeout=3)
    again = []

    def stat(pid, status):
        rec.stat(pid, status)
        if status == 0 and len(again) < 3:  # publish each timed-out message again
            again.append(c.publish("a", b"again", qos=1))

    c.set_callback_status(stat)
    first = [c.publish("a", b"m%d" % i, qos=1) for i in range(3)]
    clk = net.clock
    clk.advance(1000)
    sub = c.subscribe("s")  # times out 1 s later than the rest
    net.take()
    clk.advance(2001)
    eq(c.check_msg(), None)
    eq(sorted(rec.st), sorted([(p, 0) for p in first]))
    eq(len(again), 3)
    eq(sorted(c.rcv_pids), sorted(again + [sub]), "in flight: the new ones and the SUBSCRIBE")
    check(not [p for p in again if p in first], "a packet id reused", again, first)
    eq(net.take(), b"".join(pub("a", b"again", 1, p) for p in again))
    clk.advance(1000)
    eq(c.check_msg(), None)
    eq(rec.st[3:], [(sub, 0)])
    clk.advance(2001)
    eq(c.check_msg(), None)
    eq(sorted(rec.st[4:]), sorted([(p, 0) for p in again]))
    eq(c.rcv_pids, {})
    eq(net.take(), b"")


def case_wait_msg():
    net, c, rec = connected()
    m = pub("w", b"1", 1, 0x0101)
    net.feed(None, None, None, m)
    eq(c.wait_msg(), 0x30)
    eq(rec.msgs, [(b"w", b"1", False, False)])
    eq(net.take(), h("40 02 01 01"))
    # split, with would-blocks and time passing in between
    net.feed(m[:3], None, 700, None, m[3:5], 2500, m[5:])
    eq(c.wait_msg(), 0x30)
    eq(len(rec.msgs), 2)
    eq(net.take(), h("40 02 01 01"))
    check(net.clock.elapsed() >= 3200, "the fake clock did not move")
    # the first packet handled is returned; the one after it waits for the next call
    net.feed(None, 500, ack(0x40, 0x777) + pub("w", b"2"))
    eq(c.wait_msg(), 0x40)
    eq((len(rec.msgs), rec.st), (2, [(0x777, 2)]))
    eq(c.wait_msg(), 0x30)
    eq(len(rec.msgs), 3)
    eq(net.pending(), [])

    for start in STARTS:
        # PINGREQ while waiting
        net, c, rec = connected(start=start, keepalive=2)
        net.feed(None, 3000, PINGRESP)
        eq(c.wait_msg(), 0xD0)
        eq(net.clock.elapsed(), 3000)
        eq(net.writes, [PINGREQ])
        check(1500 <= net.wtimes[0] < 3000, "PINGREQ at %d ms, keepalive 2 s" % net.wtimes[0])
        net.take()
        # nothing at all comes: wait_msg() does not hang, the keep-alive gives up
        raises(errno.EKEEPALIVE, c.wait_msg)
        eq(net.take(), PINGREQ * 2, "a PINGREQ 1.5 s after the last, then dead 2 s after the first")
        closed(net, c)


# -- incoming QoS 2: exactly once


def case_in_qos2_duplicate():
    net, c, rec = connected()
    m = (b"q/2", b"once", False, False)
    eq(deliver(net, c, pub("q/2", b"once", 2, 7)), 0x30)
    eq(net.take(), h("50 02 00 07"))
    eq(rec.msgs, [m])
    for dup in (True, False):  # resent before PUBREL: not delivered, PUBREC again
        eq(deliver(net, c, pub("q/2", b"once", 2, 7, dup=dup)), 0x30)
        eq(net.take(), h("50 02 00 07"))
        eq(rec.msgs, [m], "a duplicate was delivered")
    eq(deliver(net, c, pub("q/2", b"other", 2, 8)), 0x30)  # another pid meanwhile
    eq(net.take(), h("50 02 00 08"))
    eq(rec.msgs, [m, (b"q/2", b"other", False, False)])
    eq(deliver(net, c, h("62 02 00 07")), 0x60)
    eq(net.take(), h("70 02 00 07"))
    eq(deliver(net, c, pub("q/2", b"new", 2, 7)), 0x30)  # the pid is free: a new message
    eq(net.take(), h("50 02 00 07"))
    eq(rec.msgs, [m, (b"q/2", b"other", False, False), (b"q/2", b"new", False, False)])
    eq(rec.st, [])


def case_callback_that_reconnects_to_a_kept_session_gets_qos2_once():
    # the broker kept the session: it sends the PUBLISH again (no PUBREC came on the
    # old link); it was delivered already, so it is answered and not delivered again
    net, c, rec = connected()
    got = []

    def cb(t, m, r, d):
        got.append((m, d))
        if len(got) == 1:
            net.feed(h("20 02 01 00"), pub("t", b"m", 2, 7, dup=True))
            c.connect(False)

    c.set_callback(cb)
    net.feed(pub("t", b"m", 2, 7))
    for i in range(3):
        c.check_msg()
    eq(got, [(b"m", False)], "delivered once")
    eq(net.take()[-4:], h("50 02 00 07"), "the re-sent PUBLISH answered with PUBREC")


# -- subscriptions


def case_out_subscribe_unsubscribe():
    net, c, rec = connected()
    for f, args, expect in (
        (c.subscribe, ("a/b", 1), "82 08 PID 0003 612f62 01"),
        (c.subscribe, ("a/b",), "82 08 PID 0003 612f62 00"),
        (c.subscribe, (b"a/b", 2), "82 08 PID 0003 612f62 02"),
        (c.subscribe, ([("a/b", 0), ("c", 2)],), "82 0c PID 0003 612f62 00 0001 63 02"),
        (c.subscribe, ([("x", 1)],), "82 06 PID 0001 78 01"),
        (c.unsubscribe, ("a/b",), "a2 07 PID 0003 612f62"),
        (c.unsubscribe, (["a/b", "c"],), "a2 0a PID 0003 612f62 0001 63"),
        (c.unsubscribe, ([b"+/#"],), "a2 07 PID 0003 2b2f23"),
    ):
        pid = f(*args)
        check(pid and pid in c.rcv_pids, "pid %r in flight" % (pid,))
        eq(net.writes, [hexpid(expect, pid)], "one write()", args)
        net.take()


def _forget_modules(*names):
    # as if never imported: out of sys.modules, and off the package (CPython's import
    # would take the package's attribute instead)
    package = sys.modules["umqtt"]
    for name in names:
        sys.modules.pop("umqtt." + name, None)
        if name in dir(package):
            delattr(package, name)


def case_subscription_code_loaded_by_the_first_subscribe_only():
    # umqtt.subscriptions (SUBSCRIBE, UNSUBSCRIBE, SUBACK) is not loaded by connect,
    # publish or receiving: a device that only publishes never holds it
    _forget_modules("subscriptions")  # (loaded by an earlier case)
    net, c, rec = connected()
    c.publish("t", b"m", qos=1)
    net.feed(packet(0x40, s16(1)), pub("t", b"x"))
    c.check_msg()
    c.check_msg()
    check("umqtt.subscriptions" not in sys.modules, "loaded before any subscribe()")
    c.subscribe("a")
    check("umqtt.subscriptions" in sys.modules, "loaded by subscribe()")


def case_suback_codes_kept_from_a_status_callback_that_reads():
    net, c, rec = connected()
    pid = c.subscribe([("a", 0), ("b", 1), ("c", 2)])
    net.take()

    def stat(p, st):  # the first status reads the next packet from inside the callback
        rec.st.append((p, st))
        if len(rec.st) == 1:
            c.check_msg()

    c.set_callback_status(stat)
    net.feed(packet(0x90, s16(pid) + b"\x00\x80\x01"), pub("xy", b"\0\0\0"))
    c.check_msg()
    eq(rec.st, [(pid, 1), (pid, 3), (pid, 1)])
    eq(rec.msgs, [(b"xy", b"\0\0\0", False, False)])
    check(c.sock is not None, "a valid stream closed")
    # a bad code anywhere: nothing reported, the pid kept (it will time out), EPROTO
    net, c, rec = connected()
    pid = c.subscribe([("a", 0), ("b", 1)])
    net.feed(packet(0x90, s16(pid) + b"\x00\x05"))
    raises(errno.EPROTO, c.check_msg)
    eq(rec.st, [])
    check(pid in c.rcv_pids)


# -- callbacks that disconnect or reconnect


def case_callbacks_that_disconnect():
    # from the message callback of a QoS 1 message: no PUBACK, no error
    net, c, rec = connected()
    c.set_callback(lambda *a: c.disconnect())
    net.feed(pub("t", b"m", 1, 7))
    eq(c.check_msg(), 0x30)
    eq(net.take(), h("e0 00"), "only the DISCONNECT")
    # from the status callback of a timeout, inside wait_msg(): it returns
    net, c, rec = connected(message_timeout=1)
    c.set_callback_status(lambda p, st: c.disconnect())
    c.publish("t", b"m", qos=1)
    net.feed(3000)
    eq(c.wait_msg(), None)
    check(c.sock is None)


def case_callback_that_reconnects_answers_nothing_on_the_new_link():
    net, c, rec = connected()

    def cb(t, m, r, d):
        rec.msgs.append((t, m))
        if m == b"reconnect":
            net.feed(CONNACK)
            c.connect()  # a clean session: the old PUBLISH is not its business

    c.set_callback(cb)
    for q in (1, 2):
        net.feed(pub("cmd", b"reconnect", q, 1))
        eq(c.check_msg(), 0x30)
        w = net.take()
        check(not w.endswith(h("40 02 00 01")) and not w.endswith(h("50 02 00 01")),
              "QoS %d: the old message's answer went out on the new link: %s" % (q, short(w)))
        eq(c._qos2_in, set(), "QoS %d" % q)
    # the new session's QoS 2 message with pid 1 is delivered, not taken for a duplicate
    rec.msgs = []
    eq(deliver(net, c, pub("data", b"important", 2, 1)), 0x30)
    eq(rec.msgs, [(b"data", b"important")])
    eq(net.take(), h("50 02 00 01"))


# -- robust2 through the fake network


def r2_connected(**kw):
    """A robust2 client connected through a fresh fake network (CONNECT taken)."""
    from umqtt.robust2 import MQTTClient as R

    return connected(cls=R, **kw)


def _r2_relink(sp=0, *more):
    """The link is lost; the next connect() finds the broker (session present: sp)."""
    net = fakesock.install()
    net.feed(h("20 02 0%d 00" % sp), *more)
    return net


def _ops(w):
    """The packet types in written bytes w (single-byte lengths)."""
    ops, i = [], 0
    while i < len(w):
        ops.append(w[i])
        i += 2 + w[i + 1]
    return ops


# -- robust2: the queue, what is kept, what is dropped


def case_r2_a_bad_argument_to_connect_leaves_no_attempt_behind():
    # a keepalive that CONNECT cannot carry: raised (EARG) before any socket, by
    # connect() and by reconnect(); once it is fixed, the next reconnect() connects
    from umqtt.robust2 import MQTTClient as R

    net = fakesock.install()
    c, rec = client(cls=R, keepalive=70000)
    raises(errno.EARG, c.connect)
    raises(errno.EARG, c.reconnect)
    eq(net.writes, [], "nothing written")
    c.keepalive = 60
    net.feed(CONNACK)
    eq(c.reconnect(), 0, "connected once the argument is right")
    check(c.is_connected())


def case_r2_what_a_publishing_device_never_loads():
    # robust2 without subscriptions or a store: connect, publish (QoS 0 to 2), the
    # answers, a lost link and a reconnect load neither umqtt.resubscribe,
    # umqtt.subscriptions nor umqtt.snapshot (README: what loads when); subscribe()
    # loads the first two, snapshot() the third
    lazy = ("resubscribe", "subscriptions", "snapshot")
    _forget_modules(*lazy)
    net, c, rec = r2_connected()
    for q in (0, 1, 2):
        c.publish("t", b"m", qos=q)
    net.feed(ack(0x40, 1), ack(0x50, 2), ack(0x70, 2), EOF)
    for _ in range(4):
        c.check_msg()
    check(c.is_conn_issue(), "the link was lost")
    _r2_relink()
    eq(c.reconnect(), 0)
    loaded = [m for m in lazy if "umqtt." + m in sys.modules]
    eq(loaded, [], "loaded by a device that only publishes")
    c.subscribe("a", 1)
    check("umqtt.resubscribe" in sys.modules and "umqtt.subscriptions" in sys.modules,
          "subscribe() loads its modules")
    c.snapshot()
    check("umqtt.snapshot" in sys.modules, "snapshot() loads its module")


def case_r2_qos0_neither_sent_nor_kept_is_reported():
    net, c, rec = r2_connected()
    c.KEEP_QOS0 = False
    c.CONFIRM_QUEUE_MAX = 1
    c.publish("t", b"A", qos=1)
    c.publish("t", b"B", qos=1)  # queued: the window is full
    net.take()
    eq(c.publish("t", b"C"), None)
    eq(net.take(), b"", "C was not sent ahead of B")
    eq(rec.st, [(0, errno.SDROPPED)], "C was reported dropped")
    c._close()  # offline
    c.publish("t", b"D")
    eq(rec.st, [(0, errno.SDROPPED)] * 2)


def case_r2_a_reused_buffer_does_not_change_kept_messages():
    net, c, rec = r2_connected()
    c._close()  # offline: the readings are kept
    buf = bytearray(4)
    pids = []
    for v in (b"0001", b"0002", b"0003"):
        buf[:] = v
        pids.append(c.publish("t", buf, qos=1))
    net = _r2_relink()
    c.connect(False)
    c.send_queue()  # (the queue waits for it, or a publish(), after a reconnect)
    w = net.take()
    for v, p in zip((b"0001", b"0002", b"0003"), pids):
        check(pub("t", v, 1, p) in w, "reading %s" % v)


def case_r2_too_big_refused_before_it_is_kept():
    class Big(bytes):
        def __len__(self):
            return 268435451  # with topic "t": one byte too many for a packet

    net, c, rec = r2_connected()
    big = Big(b"x")
    if len(big) != 268435451:  # (MicroPython: len() of a bytes subclass is its own)
        return
    raises(errno.ESTRTOLONG, c.publish, "t", big, qos=1)
    eq((c.inflight, c.msg_to_send, net.take()), ([], [], b""))


def case_r2_oversize_message_in_keeps_the_message_out():
    # status 4 carries the broker's pid: an outgoing message with the same pid stays
    net, c, rec = r2_connected(max_size=16)
    pid = c.publish("t/a", b"A", qos=1)
    net.take()
    net.feed(pub("t/in", filler(40), qos=1, pid=pid))
    for i in range(5):
        c.check_msg()
    eq(rec.st, [(pid, 4)], "the over-size message was reported")
    eq(net.take(), ack(0x40, pid), "and acknowledged")
    eq(c.things_to_do(), 1, "the outgoing message is still in flight")
    net.feed(ack(0x40, pid))
    c.check_msg()
    eq(rec.st, [(pid, 4), (pid, 1)])
    eq(c.things_to_do(), 0)


def case_r2_a_message_the_broker_refuses_is_dropped():
    # closed (EOF), reset (104), or a TLS link's end as mbedTLS reports it (-29312)
    for end in (EOF, OSError(104), OSError(-29312)):
        net, c, rec = r2_connected()
        x = c.publish("t", b"X", qos=1)
        net.feed(end)  # the broker closes the link after X (too big, not allowed, ...)
        c.check_msg()
        for i in range(3):
            net = _r2_relink(1, end)  # again, each time right after X
            c.connect(False)
            check(pub("t", b"X", 1, x, dup=True) in net.take(), "X re-sent, time %d" % (i + 1))
            c.check_msg()
        eq(rec.st, [])
        net = _r2_relink(1)
        c.connect(False)
        eq(rec.st, [(x, errno.SDROPPED)], "dropped after the link closed 3 times on it: %r" % (end,))
        eq((_ops(net.take()), c.inflight), ([0x10], []))
        y = c.publish("t", b"Y", qos=1)
        eq(net.take(), pub("t", b"Y", 1, y))
    # a link that carried a packet in between: not the message's fault, nothing dropped
    net, c, rec = r2_connected()
    x = c.publish("t", b"X", qos=1)
    for i in range(5):
        net.feed(PINGRESP if i == 2 else EOF, EOF)
        c.check_msg()
        c.check_msg()
        net = _r2_relink(1)
        c.connect(False)
    eq((rec.st, len(c.inflight)), ([], 1))


def case_r2_drop_after_counts_only_links_the_broker_closed():
    # each link ends with no PUBACK in time (53), then an attempt is refused (104, as
    # lwIP says it) or closed before CONNACK: the broker never closed a link after m
    for refuse in (True, False):
        net, c, rec = r2_connected(message_timeout=5)
        m = c.publish("t", b"reading", qos=1)
        real = fakesock.FakeSocket.connect

        def refused(sock, addr):
            raise OSError(104)

        for i in range(5):
            c._ts = net.clock.now  # (each fake network starts its clock afresh)
            net.clock.advance(5300)
            c.check_msg()
            eq(c.conn_issue[0].args[0], 53)
            net = fakesock.install()
            if refuse:
                fakesock.FakeSocket.connect = refused
            else:
                net.feed(EOF)
            try:
                c.connect(False)
            finally:
                fakesock.FakeSocket.connect = real
            check(c.sock is None)
            net = _r2_relink(1)
            c.connect(False)
            check(pub("t", b"reading", 1, m, dup=True) in net.take())
        eq((rec.st, len(c.inflight)), ([], 1), "refused %s" % refuse)


def case_r2_drop_after_ignores_the_application_disconnecting():
    # disconnect() by the application, then calls while offline ("not connected", 28):
    # no link was closed on the message, nothing is dropped
    net, c, rec = r2_connected()
    x = c.publish("t", b"X", qos=1)
    for i in range(5):
        c.disconnect()
        c.check_msg()
        eq(c.conn_issue[0].args[0], errno.ECONNOT)
        net = _r2_relink(1)
        c.connect(False)
        check(pub("t", b"X", 1, x, dup=True) in net.take())
    eq((rec.st, len(c.inflight)), ([], 1))


def case_r2_a_drop_is_reported_after_the_resends():
    # a status callback that publishes on SDROPPED comes after the messages in flight
    net, c, rec = r2_connected()

    def stat(pid, st):
        rec.st.append((pid, st))
        if st == errno.SDROPPED:
            c.publish("alert", b"dropped", qos=1)

    c.set_callback_status(stat)
    x = c.publish("t", b"X", qos=1)
    y = c.publish("t", b"Y", qos=1)
    net.feed(EOF)
    c.check_msg()
    for i in range(3):
        net = _r2_relink(1, EOF)
        c.connect(False)
        c.check_msg()
    net = _r2_relink(1)
    c.connect(False)
    eq(rec.st, [(x, errno.SDROPPED)])
    a = c.inflight[-1][4]
    w = net.take()
    eq(_ops(w), [0x10, 0x3A, 0x32], "CONNECT, Y again (DUP), then the alert once")
    check(w.endswith(pub("alert", b"dropped", 1, a)) and pub("t", b"Y", 1, y, dup=True) in w)


# -- robust2: reconnecting, backoff, lost sessions, failures and their causes


def case_r2_backoff_counts_links_that_do_not_hold():
    # a broker that accepts and drops the client at once: attempts back off all the same
    import umqtt.robust2 as r2m

    from umqtt.robust2 import MQTTClient as R

    net = fakesock.install()
    saved = r2m.ticks_ms
    r2m.ticks_ms = net.clock.ticks_ms  # robust2's backoff on the fake clock too
    try:
        c = R("cid", "broker.test")
        c.DELAY_MIN = 100
        c.DELAY_MAX = 10000
        for i in range(40):  # 2 s
            if not net.pending():
                net.feed(CONNACK)
            if c.reconnect() is not None:
                net.feed(OSError(104))  # dropped at once
                c.check_msg()
            net.clock.advance(50)
        n = len(net.sockets)
        check(2 <= n <= 6, "attempts in 2 s:", n)
        # a link that carried a packet: the next attempt is due at once, counted afresh
        while True:
            if not net.pending():  # (the loop above may have used its last CONNACK)
                net.feed(CONNACK)
            if c.reconnect() is not None:
                break
            net.clock.advance(50)
        net.feed(PINGRESP, OSError(104))
        c.check_msg()
        c.check_msg()
        net.feed(CONNACK)
        check(c.reconnect() is not None, "no wait after a link that worked")
        eq(c._fails, 1)

        class F(R):
            def delay(self, n):
                return 1.5 * 100  # a float

        f = F("cid", "broker.test")
        net.feed(h("20 02 00 05"))
        eq(f.connect(), None)
        eq(f.conn_issue[0].args[0], errno.ECONAUTH)
    finally:
        r2m.ticks_ms = saved


def case_r2_lost_session_forgets_pubrec_of_messages_not_resent():
    # A and B past PUBREC; the link drops; a reconnect to a broker without the session
    # fails while re-sending A; the next one finds a session (made by the first): B is
    # published again, not released with a PUBREL it never had in that session
    net, c, rec = r2_connected(socket_timeout=1)
    a = c.publish("t", b"A", qos=2)
    b = c.publish("t", b"B", qos=2)
    net.take()
    net.feed(ack(0x50, a), ack(0x50, b))
    c.check_msg()
    c.check_msg()
    eq(net.take(), ack(0x62, a) + ack(0x62, b), "PUBREL for both")
    net = fakesock.install()  # the link is gone: a new one
    net.feed(h("20 02 00 00"))  # session lost
    net.write_plan([1 << 20] + [None] * 50)  # CONNECT goes, then nothing more does
    eq(c.connect(False), 0)
    check(c.conn_issue, "the re-send failed")
    net = fakesock.install()
    net.feed(h("20 02 01 00"))  # a session: the one the failed attempt made
    eq(c.connect(False), 1)
    w = net.take()
    check(w.endswith(pub("t", b"A", qos=2, pid=a, dup=True) + pub("t", b"B", qos=2, pid=b, dup=True)),
          "A and B published again, in order:", short(w))


def case_r2_a_lost_session_is_renewed_even_when_the_first_link_fails():
    # the session is lost; the re-send stalls, so the renewal never went out; the next
    # CONNACK says "session present" (the failed attempt's new session): renew anyway
    net, c, rec = r2_connected(socket_timeout=1)
    p = c.subscribe("cmd", 1)
    deliver(net, c, hexpid("90 03 PID 01", p))
    c.publish("t", b"A", qos=1)
    net = _r2_relink(0)
    net.write_plan([1 << 20] + [None] * 50)  # CONNECT goes out, then nothing
    eq(c.connect(False), 0)
    check(c.sock is None)
    net = _r2_relink(1)
    eq(c.connect(False), 1)
    w = net.take()
    eq(_ops(w), [0x10, 0x3A, 0x82], "CONNECT, A again, the renewal")
    check(mstr("cmd") in w)


def case_r2_wait_msg_after_a_timeout_keeps_the_cause():
    net, c, rec = r2_connected(message_timeout=0.3)
    c.publish("t", b"A", qos=1)
    for i in range(10):
        if c.conn_issue:
            break
        eq(c.wait_msg(), None)
    eq(c.conn_issue[0].args[0], errno.ENOACK, "no answer in time", c.conn_issue)
    eq(c.is_keepalive(), False)
    eq(c.things_to_do(), 1, "kept for the re-send")


def case_r2_conn_issue_keeps_the_cause_while_offline():
    from umqtt.robust2 import MQTTClient as R

    net = fakesock.install()
    c = R("cid", "broker.test")
    net.feed(h("20 02 00 04"))  # bad user name or password
    eq(c.connect(), None)
    eq(c.conn_issue[0].args[0], errno.ECONCREDENTIALS)
    c.publish("t", b"m", qos=1)  # offline: queued
    c.check_msg()
    c.subscribe("a")
    c.ping()
    eq(c.conn_issue[0].args[0], errno.ECONCREDENTIALS, "not replaced by 'not connected'")
    net, c, rec = r2_connected(keepalive=1)
    net.clock.advance(800)
    c.check_msg()  # PINGREQ
    net.clock.advance(1001)
    c.check_msg()  # no PINGRESP: dead
    eq(c.conn_issue[0].args[0], errno.EKEEPALIVE)
    c.check_msg()
    c.wait_msg()
    eq(c.conn_issue[0].args[0], errno.EKEEPALIVE)
    eq(c.is_keepalive(), False)


def case_r2_flows_timing_out_together_are_one_failure():
    net, c, rec = r2_connected(message_timeout=1)
    lines = []
    c.log = lambda *a: lines.append(a)
    pids = [c.publish("t", b"x%d" % i, qos=1) for i in range(5)]
    net.clock.advance(1500)
    c.check_msg()
    eq((len(lines), c.conn_issue[0].args[0], len(c.inflight)), (1, 53, 5))


def case_r2_callback_errors_are_not_connection_failures():
    net, c, rec = r2_connected()

    def bad(*a):
        raise OSError(19)  # e.g. a sensor on I2C that is gone

    c.set_callback(bad)
    net.feed(pub("t", b"m"))
    try:
        c.check_msg()
        raise AssertionError("the callback's OSError was swallowed")
    except OSError as e:
        eq(e.args[0], 19)
    eq(c.conn_issue, None)
    check(c.sock is not None, "the link was closed")


def case_r2_publish_failures_name_publish():
    net, c, rec = r2_connected()
    net.wmax = 0
    net.write_plan([])
    c.socket_timeout = 0.2
    c.publish("t", b"x" * 10, qos=1)
    eq(c.conn_issue[1], 2, "place: publish")


def case_r2_debug_logs_once_per_failure():
    net, c, rec = r2_connected()
    lines = []
    c.log = lambda *a: lines.append(a)
    net.feed(EOF)
    c.check_msg()
    for i in range(1000):
        check(c.is_conn_issue())
        c.reconnect()  # the first at once (it fails on EOF too), then not due yet
    eq(len(lines), 2, "one line per failure: the link's end, the first attempt's")


# -- robust2: subscriptions


def case_r2_subscriptions_forgotten_and_checked():
    net, c, rec = r2_connected()
    c.subscribe("a/b")
    c.subscribe([("c", 1), (b"d", 0)])
    c.unsubscribe([b"c", "d"])  # a list, and bytes for a str filter
    eq(c.subs, [("a/b", 0)])
    c.unsubscribe(b"a/b")
    eq(c.subs, [])
    c._close()  # offline: still refused at once, nothing kept or queued
    queued = len(c.sub_to_send)
    for bad in ("a/#/b", ["ok", "x+"], [], 5):
        raises(errno.EARG, c.subscribe, bad)
        raises(errno.EARG, c.unsubscribe, bad)
    raises(errno.EARG, c.subscribe, "a", 3)
    eq(c.subs, [])
    eq(len(c.sub_to_send), queued)


def case_r2_a_subscription_made_offline_goes_out_once():
    for sp in (0, 1):
        from umqtt.robust2 import MQTTClient as R

        net = fakesock.install()
        c = R("cid", "broker.test")
        net.feed(EOF)
        eq(c.connect(False), None)  # the broker is away at boot
        c.subscribe("a", 1)  # remembered and queued
        c.resubscribe()  # the peer's loop calls it, offline too
        net = fakesock.install()
        net.feed(h("20 02 %02x 00" % sp))
        eq(c.connect(False), sp)
        w = net.take()
        ops = []
        i = 0
        while i < len(w):  # the packets written (all short here)
            ops.append(w[i])
            i += 2 + w[i + 1]
        eq(ops, [0x10, 0x82], "session present %d:" % sp, short(w))
        check(w.endswith(mstr("a") + b"\x01"), short(w))
        # a filter subscribed without being remembered still goes out from the queue
        net = fakesock.install()
        net.feed(EOF)
        c.connect(False)
        c.subscribe("b", 0, resubscribe=False)
        net = fakesock.install()
        net.feed(h("20 02 00 00"))
        c.connect(False)
        w = net.take()
        check(mstr("a") in w and mstr("b") in w, short(w))


def case_r2_an_unanswered_subscription_goes_out_once_with_its_pid():
    for sp in (0, 1):
        net, c, rec = r2_connected()
        pid = c.subscribe("a/b", 1)
        q = c.subscribe("c", 0, resubscribe=False)
        net.take()
        net = _r2_relink(sp)  # the SUBACKs never came
        c.connect(False)
        w = net.take()
        eq(_ops(w), [0x10, 0x82, 0x82], "CONNECT, the two SUBSCRIBEs again (session %d)" % sp)
        check(hexpid("82 08 PID 0003 612f62 01", pid) in w and hexpid("82 06 PID 0001 63 00", q) in w, short(w))
        net.feed(hexpid("90 03 PID 01", pid), hexpid("90 03 PID 00", q))
        c.check_msg()
        c.check_msg()
        eq(rec.st, [(pid, 1), (q, 1)], "the pids subscribe() returned")
        eq(c.things_to_do(), 0)


def case_r2_a_subscribe_without_suback_in_time_resets_the_link():
    net, c, rec = r2_connected(message_timeout=2)
    pid = c.subscribe("a", 1)
    net.take()
    net.clock.advance(2100)
    c.check_msg()
    eq(c.conn_issue[0].args[0], 53)
    check(c.sock is None)
    eq(rec.st, [], "not reported: it is sent again")
    net = _r2_relink(1)
    c.connect(False)
    w = net.take()
    eq(w[2 + w[1] :], hexpid("82 06 PID 0001 61 01", pid), "again, with its pid")


def case_r2_offline_unsubscribe_then_subscribe_ends_subscribed():
    net, c, rec = r2_connected()
    p = c.subscribe("x", 1)
    eq(deliver(net, c, hexpid("90 03 PID 01", p)), 0x90)
    net.take()
    c._close()
    c.unsubscribe("x")  # offline: queued
    c.subscribe("x", 1)  # offline: remembered
    net = _r2_relink(1)
    c.connect(False)
    eq(_ops(net.take()), [0x10, 0xA2, 0x82], "the UNSUBSCRIBE first, then the SUBSCRIBE")
    eq(c.subs, [("x", 1)])


def case_r2_unanswered_subscriptions_go_again_in_their_order():
    # unsubscribe x, then subscribe x, neither answered: after the reconnect x must end
    # subscribed, whatever the pids (a dict keeps no order on MicroPython)
    for skip in range(8):
        net, c, rec = r2_connected()
        for i in range(skip):
            deliver(net, c, ack(0x40, c.publish("t", b"m", qos=1)))
        c.unsubscribe("x")
        c.subscribe("x", 1)
        net.take()
        net = _r2_relink(1)
        c.connect(False)
        eq(_ops(net.take()), [0x10, 0xA2, 0x82], "pids from %d" % (skip + 1))
        fakesock.uninstall()
    # subscribe x, unsubscribe x (no answers), link lost, subscribe x offline: the
    # renewal is not skipped for a filter the pending UNSUBSCRIBE removes
    for sp in (0, 1):
        net, c, rec = r2_connected()
        c.subscribe("x", 1)
        c.unsubscribe("x")
        c._close()
        c.subscribe("x", 1)
        net = _r2_relink(sp)
        c.connect(False)
        eq(_ops(net.take()), [0x10, 0x82, 0xA2, 0x82], "session %d" % sp)
        fakesock.uninstall()


def case_r2_a_kept_session_after_the_first_boot_is_not_resubscribed():
    # first boot: a new session, nothing remembered yet, then subscribe(); the next
    # link finds the session kept: no SUBSCRIBE (retained messages would come again)
    from umqtt.robust2 import MQTTClient as R

    net = fakesock.install()
    c = R("cid", "broker.test")
    net.feed(h("20 02 00 00"))
    eq(c.connect(False), 0)
    p = c.subscribe("home/cmd", 1)
    eq(deliver(net, c, hexpid("90 03 PID 01", p)), 0x90)
    c._close()
    net = _r2_relink(1)
    eq(c.connect(False), 1)
    eq(_ops(net.take()), [0x10], "CONNECT only")


# -- robust2: the store hooks (what a power cut leaves)


class SnapStore:
    """A store that keeps, at each save, what a FileStore would write, and the bytes the
    client had written by then: the state a power cut right after that save leaves."""

    def __init__(self, net):
        self.net = net
        self.snaps = []

    def save(self, snap):  # snap: the client's snapshot() (last pid, messages, held)
        last, ms, held = snap
        self.snaps.append({"lastpid": last, "q2": sorted(held), "out": len(self.net.out),
                           "inflight": [(m[4], m[5]) for m in ms if m[5]],
                           "queued": [m[4] for m in ms if not m[5]]})

    def last(self):
        return self.snaps[-1]


def case_r2_restored_str_fields_go_out_as_utf8_bytes():
    # a store may give the topic and payload as str (JSON has no bytes): restore()
    # turns them into checked bytes, so the re-send is a well-formed PUBLISH (the
    # topic's length counted in bytes, not characters)
    from umqtt.robust2 import MQTTClient as R

    c = R("c", "broker")
    c.restore(5, [["t/\u00e9", "h\u00e9", False, 1, 3, 1]], [])
    eq(c.inflight[0][:2], [b"t/\xc3\xa9", b"h\xc3\xa9"])
    net = _r2_relink(1)
    eq(c.connect(False), 1)
    w = net.take()
    eq(w[w.index(0x3A):], bytearray(pub(b"t/\xc3\xa9", b"h\xc3\xa9", 1, 3, dup=True)), "DUP, pid 3")


def case_r2_a_new_pid_is_none_a_kept_message_holds():
    # Pids are drawn in turn, and one a kept message still holds is passed over: here
    # in flight (pid 1) and queued (pid 2), both restored from a store with the pids
    # drawn up to 65533, so the pids drawn next wrap round onto theirs. Publishing and
    # subscribing draw alike.
    from umqtt.robust2 import MQTTClient as R

    c = R("c", "broker")
    c.restore(65533, [[b"t", b"a", False, 1, 1, 1, None], [b"t", b"b", False, 1, 2, 0, None]], [])
    eq(c.publish("t", b"m", qos=1), 65534, "offline: queued")
    net = _r2_relink(1)
    eq(c.connect(False), 1)
    eq(c.subscribe("s"), 65535)
    eq(c.subscribe("s"), 3, "pids 1 (in flight) and 2 (queued) passed over")
    eq(c.publish("t", b"m", qos=1), 4, "the queue sent first")
    eq([m[4] for m in c.inflight], [1, 2, 65534, 4])


def case_r2_store_saves_pubrec():
    # past PUBREC is saved at once: after a power cut the message is released, not sent
    # again (that would be a second delivery)
    net, c, rec = r2_connected()
    saved = []

    class Store:
        def save(self, snap):
            saved.append([m[5] for m in snap[1] if m[5]])

    c.store = Store()
    c.publish("t", b"A", qos=2)
    net.feed(ack(0x50, c.inflight[0][4]))
    c.check_msg()
    eq(saved[-1], [2], "saved as past PUBREC")


def case_r2_saved_before_each_answer_and_each_send():
    net, c, rec = r2_connected()
    st = c.store = SnapStore(net)
    # an incoming QoS 2 message: its pid saved before PUBREC goes out
    net.feed(pub("t", b"m", 2, 7))
    c.check_msg()
    eq(net.out, bytearray(ack(0x50, 7)))
    eq((st.last()["q2"], st.last()["out"]), ([7], 0), "saved with pid 7, before PUBREC")
    net.take()
    # PUBREL: the pid forgotten, saved before PUBCOMP
    net.feed(ack(0x62, 7))
    c.check_msg()
    eq(net.out, bytearray(ack(0x70, 7)))
    eq((st.last()["q2"], st.last()["out"]), ([], 0), "saved without pid 7, before PUBCOMP")
    net.take()
    # a QoS 2 message out: saved in flight, with its pid drawn, before the PUBLISH
    pid = c.publish("t", b"A", qos=2)
    s = st.last()
    eq((s["inflight"], s["lastpid"], s["out"]), ([(pid, 1)], pid, 0), "saved before the PUBLISH")
    net.take()
    # through the queue: never saved twice (queued and in flight at once)
    c.CONFIRM_QUEUE_MAX = 1
    b = c.publish("t", b"B", qos=1)
    eq(st.last()["queued"], [b])
    net.feed(ack(0x50, pid), ack(0x70, pid))
    c.check_msg()
    c.check_msg()
    for s in st.snaps:
        ids = [p for p, r in s["inflight"]] + s["queued"]
        eq(len(ids), len(set(ids)), "a pid saved twice", s)
    # (queued -> in flight is not saved: after a cut B is sent again with its pid)
    eq((st.last()["inflight"], st.last()["queued"]), ([], [b]))


def case_r2_lost_session_saved_before_the_resend():
    # past PUBREC, then a session lost: saved as not past PUBREC before the re-send, so
    # a power cut after a failed re-send does not end in a PUBREL for a lost message
    net, c, rec = r2_connected(socket_timeout=1)
    st = c.store = SnapStore(net)
    a = c.publish("t", b"A", qos=2)
    net.take()
    net.feed(ack(0x50, a))
    c.check_msg()
    eq(st.last()["inflight"], [(a, 2)], "past PUBREC")
    net = fakesock.install()
    st.net = net
    net.feed(h("20 02 00 00"))
    net.write_plan([1 << 20] + [None] * 50)  # the re-send never goes out
    c.connect(False)
    eq(st.last()["inflight"], [(a, 1)], "saved: to be published again")


def case_r2_lost_session_saved_before_anything_goes_out():
    net, c, rec = r2_connected()
    c.subscribe("cmd", 1)
    a = c.publish("t", b"A", qos=2)
    eq(deliver(net, c, ack(0x50, a)), 0x50)  # A past PUBREC
    st = c.store = SnapStore(net)
    net = _r2_relink(0)
    st.net = net
    c.connect(False)
    s = st.snaps[0]
    w = net.take()
    eq((s["inflight"], s["out"]), ([(a, 1)], 2 + w[1]), "saved, not past PUBREC, when only CONNECT was out")
    eq(_ops(w), [0x10, 0x82, 0x34], "CONNECT, the subscription renewed, then A anew")


def case_r2_a_failing_store_fails_no_call():
    net, c, rec = r2_connected()

    class Full:
        def save(self, cl):
            raise OSError(28)  # no space left

    c.store = Full()
    pid = c.publish("t", b"A", qos=1)
    check(pid, "publish() returned its pid")
    eq(net.take(), pub("t", b"A", 1, pid))
    net.feed(ack(0x40, pid))
    c.check_msg()
    eq(rec.st, [(pid, 1)])
    eq(c.conn_issue, None)
    check(c.sock is not None)


def case_r2_a_store_out_of_memory_fails_no_call():
    # every event of a store that meets a full heap: the call goes on, the message is
    # sent and tracked, its outcome reported (a store's event is never where a full heap
    # raises out of publish(), on_ack or on_qos2)
    net, c, rec = r2_connected()

    class NoRoom:
        def add(self, cl, m):
            raise MemoryError

        remove = hold = release = state = add

    c.store = NoRoom()
    pid = c.publish("t", b"A", qos=2)
    eq(net.take(), pub("t", b"A", 2, pid))
    check(pid in c.rcv_pids, "tracked")
    net.feed(ack(0x50, pid), ack(0x70, pid), pub("x", b"B", 2, 9), packet(0x62, s16(9)))
    for _ in range(4):
        c.check_msg()
    eq(rec.st, [(pid, 1)])
    eq(rec.msgs, [(b"x", b"B", False, False)])
    eq(net.take(), ack(0x62, pid) + ack(0x50, 9) + ack(0x70, 9))


def case_r2_queue_max_drop_says_which_bound():
    # the log line of a drop names the bound that was hit (README)
    lines = []
    net, c, rec = r2_connected()
    c.MSG_QUEUE_MAX = 2
    c.DEBUG = True
    c.disconnect()  # offline: queued
    c.log = lambda *what: lines.append(" ".join(str(w) for w in what))
    for m in (b"1", b"2", b"3"):
        c.publish("t", m, qos=1)
    drops = [ln for ln in lines if "dropped" in ln]
    eq(len(drops), 1, lines)
    check("MSG_QUEUE_MAX=2" in drops[0], drops)


def case_r2_store_refuses_a_torn_first_save():
    import os
    from umqtt.store import FileStore, _MAGIC

    path = "/tmp/umqtt-torn-%d.dat" % os.getpid() if hasattr(os, "getpid") else "/tmp/umqtt-torn.dat"
    # the first save of "reading=1234" on topic "t", cut before the payload: its last
    # four bytes say 12, which is its length less four
    torn = _MAGIC + h("0001") + h("01 0001 0001") + b"t" + h("0000000c")
    eq(len(torn) - 4, 12)
    for p in (path, path + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass
    with open(path + ".tmp", "wb") as f:
        f.write(torn)
    from umqtt.robust2 import MQTTClient as R

    c = R("cid", "broker.test")
    eq(FileStore(path).load(c), 0)
    eq((c.inflight, c.msg_to_send), ([], []))
    os.remove(path + ".tmp")


# -- the runner


def all_cases():
    return sorted(n for n in globals() if n.startswith("case_"))


def run(name):
    try:
        globals()[name]()
    finally:
        fakesock.uninstall()


def format_exc(e):
    if hasattr(sys, "print_exception"):  # MicroPython
        import io

        s = io.StringIO()
        sys.print_exception(e, s)
        return s.getvalue()
    import traceback

    return "".join(traceback.format_exception(type(e), e, e.__traceback__))


def main():
    only = os.getenv("CASE")
    passed = failed = 0
    for name in [only] if only else all_cases():
        try:
            run(name)
        except Exception as e:
            failed += 1
            print("FAIL %s: %s" % (name, format_exc(e)))
        else:
            passed += 1
            print("ok " + name)
    print("%d passed, %d failed" % (passed, failed))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
