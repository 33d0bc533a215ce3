"""Network faults between the client and mosquitto, on MicroPython and CPython: a
re-segmenting slow link, a half-open link, FIN and RST mid-session, a server that
never answers and a closed port. The faults come from tests/faultproxy.py; a client
script switches the proxy with proxy("command") at the moment it needs the fault."""
import textwrap

import pytest

from brokers import free_port
from faultproxy import SCRIPT_CONTROL, FaultProxy, SilentServer

# A check_msg() wrapper for scripts: the slowest single call, and how many calls
# found no complete packet yet.
TIMED = """
class Timed:
    def __init__(self, c):
        self.c, self.worst, self.calls, self.idle = c, 0, 0, 0
    def check_msg(self):
        t = ticks_ms()
        r = self.c.check_msg()
        self.worst = max(self.worst, ticks_diff(ticks_ms(), t))
        self.calls += 1
        self.idle += r is None
        return r

def spin(c, ms):
    # check_msg() in a loop for ms milliseconds, unless it raises first
    t = ticks_ms()
    while ticks_diff(ticks_ms(), t) < ms:
        c.check_msg()
        sleep_ms(5)
"""


def script(body):
    return SCRIPT_CONTROL + TIMED + textwrap.dedent(body)


@pytest.fixture
def proxy(mosquitto):
    p = FaultProxy(mosquitto.port).start()
    yield p
    p.stop()
    assert not p.thread.is_alive(), "the proxy did not stop"


def through(proxy, **env):
    """run() arguments for a script that talks to mosquitto through the proxy."""
    env["PROXY_CTL"] = str(proxy.control_port)
    return {"port": proxy.port, "env": env, "timeout": 40}


def test_one_byte_segments_both_ways(run, proxy):
    # every byte is its own TCP segment, 3 ms apart, in both directions: each packet
    # arrives over many check_msg() calls, and none of them may wait for the rest
    proxy.command("chunk 0.003")
    out = run(script("""
    c = client("seg")
    inbox, st = Inbox(), Status()
    c.set_callback(inbox)
    c.set_callback_status(st)
    eq(c.connect(), 0)
    tc = Timed(c)
    t = name("seg")
    sp = c.subscribe(t + "/#", 2)
    until(lambda: st.of(sp) == [errno.SDELIVERED], [tc], ms=10000, what="SUBACK")
    body = b"0123456789" * 6
    pids = [c.publish(t + "/" + str(q), body + str(q).encode(), qos=q) for q in (0, 1, 2)]
    until(lambda: len(inbox.msgs) == 3 and st.of(pids[1]) and st.of(pids[2]), [tc],
          ms=20000, what="messages and acks")
    eq(sorted(inbox.payloads()), [body + b"0", body + b"1", body + b"2"])
    eq(st.of(pids[1]), [errno.SDELIVERED], "PUBACK")
    eq(st.of(pids[2]), [errno.SDELIVERED], "PUBCOMP")
    until(lambda: not c._qos2_in, [tc], ms=5000, what="PUBREL of the incoming QoS 2 message")
    eq(c.rcv_pids, {}, "nothing left in flight")
    print("check_msg calls", tc.calls, "idle", tc.idle, "worst ms", tc.worst)
    check(tc.worst <= 50, "a check_msg() call took", tc.worst, "ms")
    check(tc.idle > 100, "packets did not arrive piecemeal:", tc.idle, "idle calls")
    c.disconnect()
    """), **through(proxy))
    assert "worst ms" in out
    for way in ("up", "down"):  # the proxy really sent one byte per write
        assert proxy.bytes[way] > 150 and proxy.writes[way] == proxy.bytes[way], (
            way, proxy.bytes, proxy.writes)


def test_half_open_link_detected_by_keepalive(run, proxy):
    run(script("""
    c = client("half", keepalive=2)
    c.connect()
    proxy("blackhole")  # nothing passes any more; both sockets stay open
    t0 = ticks_ms()
    raises(errno.EKEEPALIVE, spin, c, 10000)
    ms = ticks_diff(ticks_ms(), t0)
    print("EKEEPALIVE after", ms, "ms")
    check(ms <= 2 * 2000 + 1500, "dead link noticed only after", ms, "ms")
    eq(c.sock, None, "the socket is dropped")
    raises(errno.ECONNOT, c.check_msg)
    """), **through(proxy))


def test_idle_client_kept_alive_by_pingreq(run):
    # mosquitto drops a client that sends nothing for 1.5 x keepalive (3 s here)
    run("""
    c = client("idle", keepalive=2)
    inbox = Inbox()
    c.set_callback(inbox)
    c.connect()
    t = name("idle")
    c.subscribe(t, 1)
    pings = 0
    t0 = ticks_ms()
    while ticks_diff(ticks_ms(), t0) < 6000:
        if c.check_msg() == 0xD0:  # PINGRESP
            pings += 1
        sleep_ms(10)
    print("PINGRESP in 6 s:", pings)
    check(pings >= 2, "only", pings, "PINGRESP in 6 s with keepalive=2")
    c.publish(t, b"still here", qos=1)
    until(lambda: inbox.msgs, [c], what="a message after 6 s idle")
    eq(inbox.payloads(), [b"still here"])
    c.disconnect()
    """, timeout=40)


def test_connect_failures_keep_no_socket(run):
    # each client is connected first, so a failed connect() has a socket to lose
    silent = SilentServer()
    try:
        run("""
        def reconnect_to(port):
            c = client("cf", socket_timeout=1)
            c.connect()
            c.port = port
            return c

        c = reconnect_to(int(env("SILENT_PORT")))
        t0 = ticks_ms()
        raises(errno.ECONTIMEOUT, c.connect)
        ms = ticks_diff(ticks_ms(), t0)
        print("ECONTIMEOUT after", ms, "ms")
        check(900 <= ms <= 1700, "no CONNACK: gave up after", ms, "ms, socket_timeout=1")
        eq(c.sock, None, "no socket kept after a timeout")
        raises(errno.ECONNOT, c.check_msg)

        c = reconnect_to(int(env("CLOSED_PORT")))
        try:
            c.connect()
            raise AssertionError("connect() to a closed port did not raise")
        except OSError as e:
            print("closed port:", repr(e))
        eq(c.sock, None, "no socket kept after a refused connect")
        raises(errno.ECONNOT, c.check_msg)
        """, env={"SILENT_PORT": str(silent.port), "CLOSED_PORT": str(free_port())}, timeout=30)
    finally:
        silent.stop()


@pytest.mark.parametrize("fault", ["kill", "reset"])
def test_connection_lost_mid_session(run, proxy, fault):
    # kill: the proxy closes both sides (FIN) -> EOF -> MQTTException(ECONCLOSE)
    # reset: the proxy aborts both sides (RST) -> OSError (ECONNRESET)
    run(script("""
    c = client("lost")
    inbox, st = Inbox(), Status()
    c.set_callback(inbox)
    c.set_callback_status(st)
    c.connect()
    t = name("lost")
    c.subscribe(t, 1)
    pid = c.publish(t, b"before", qos=1)
    until(lambda: inbox.msgs and st.of(pid), [c], what="a round trip before the fault")
    fault = env("FAULT")
    proxy(fault)
    t0 = ticks_ms()
    err = None
    try:
        spin(c, 3000)
    except (MQTTException, OSError) as e:
        err = e
    ms = ticks_diff(ticks_ms(), t0)
    print(fault, "->", repr(err), "after", ms, "ms")
    if fault == "kill":
        check(isinstance(err, MQTTException) and err.args[0] == errno.ECONCLOSE,
              "FIN gave", repr(err))
    else:
        check(isinstance(err, OSError), "RST gave", repr(err))
    check(ms <= 500, "the lost connection was noticed only after", ms, "ms")
    eq(c.sock, None, "the socket is dropped")
    raises(errno.ECONNOT, c.check_msg)
    eq(c.connect(), 0, "a new connection through the proxy")
    c.subscribe(t, 1)
    pid = c.publish(t, b"after", qos=1)
    until(lambda: len(inbox.msgs) == 2 and st.of(pid), [c], what="a round trip after")
    eq(inbox.payloads(), [b"before", b"after"])
    c.disconnect()
    """), **through(proxy, FAULT=fault))


def test_publish_after_reset_raises(run, proxy):
    # the write path: a publish() on a connection the peer has reset
    run(script("""
    c = client("rstw")
    c.connect()
    proxy("reset")
    try:
        c.publish(name("rstw"), b"into a reset connection", qos=1)
        raise AssertionError("publish() on a reset connection did not raise")
    except OSError as e:
        print("publish after RST:", repr(e))
    eq(c.sock, None, "the socket is dropped")
    raises(errno.ECONNOT, c.publish, name("rstw"), b"x")
    """), **through(proxy))


def test_wait_msg_on_half_open_link(run, proxy):
    run(script("""
    c = client("wm", keepalive=2, socket_timeout=3)
    c.connect()
    c.subscribe(name("wm"), 0)
    eq(c.wait_msg(), 0x90, "wait_msg() returns the SUBACK")
    eq(c.socket_timeout, 3, "wait_msg() changed socket_timeout")
    tc = Timed(c)
    drain([tc], 200)
    check(tc.worst <= 50, "check_msg() blocks after wait_msg():", tc.worst, "ms")
    proxy("blackhole")
    t0 = ticks_ms()
    raises(errno.EKEEPALIVE, c.wait_msg)
    ms = ticks_diff(ticks_ms(), t0)
    print("wait_msg EKEEPALIVE after", ms, "ms")
    check(ms <= 2 * 2000 + 1500, "wait_msg() noticed the dead link after", ms, "ms")
    eq(c.socket_timeout, 3, "wait_msg() changed socket_timeout")
    eq(c.sock, None, "the socket is dropped")
    """), **through(proxy))


class ScriptedBroker:
    """A server that answers each connection with a script: play(conn) reads and writes
    raw bytes, then the connection is closed (FIN), or aborted (RST) if play says so."""

    def __init__(self, play):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.1)  # accept() wakes up to see stop()
        self.port = self.sock.getsockname()[1]
        self.play = play
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import socket
        import struct

        while not self.halt.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # the timeout: look at halt again
                continue
            conn.settimeout(5)
            try:
                if self.play(conn) == "rst":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            conn.close()

    def stop(self):
        self.halt.set()
        self.thread.join(5)
        self.sock.close()


def test_reset_mid_handshake_and_truncated_packets(run):
    # RST while the client waits for CONNACK, RST in the middle of the TLS handshake,
    # and a broker that sends CONNACK, then half a PUBLISH, then goes away: each is an
    # error at once, never a hang, and leaves no socket behind.
    rst = ScriptedBroker(lambda c: (c.recv(10), "rst")[1])
    half = ScriptedBroker(lambda c: (c.recv(100), c.sendall(b"\x20\x02\x00\x00\x30\x0a\x00\x01t"))[0])
    try:
        run("""
        for port, tls in ((int(env("RST_PORT")), False), (int(env("RST_PORT")), True)):
            c = client("rst", port=port, socket_timeout=2, ssl=tls,
                       ssl_params={"cert_reqs": 0} if tls else None)
            t0 = ticks_ms()
            try:
                c.connect()
                raise AssertionError("connect() through a reset did not raise")
            except (OSError, MQTTException) as e:
                print("reset, tls=%s:" % tls, repr(e))
            check(ticks_diff(ticks_ms(), t0) < 1500, "the reset was noticed at once")
            eq(c.sock, None, "no socket kept")
        c = client("half", port=int(env("HALF_PORT")), socket_timeout=2)
        eq(c.connect(), 0)
        t0 = ticks_ms()
        e = None
        while e is None:
            check(ticks_diff(ticks_ms(), t0) < 1500, "the cut was noticed")
            try:
                check(c.check_msg() is None, "half a PUBLISH is no packet")
            except MQTTException as x:
                e = x
        eq(e.args[0], errno.ECONCLOSE, "EOF in the middle of a packet")
        eq(c.sock, None)
        """, env={"RST_PORT": str(rst.port), "HALF_PORT": str(half.port)}, timeout=30)
    finally:
        rst.stop()
        half.stop()
