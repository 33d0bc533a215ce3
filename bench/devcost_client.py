# The MicroPython side of bench/devcost.py: one client library, one measurement, with
# an in-process fake network, so that nothing waits and every run of the same command
# executes the same instructions. Compiled to .mpy and run as
#   micropython -X heapsize=NNk -m devcost_client      (the library's .mpy on MICROPYPATH)
# Parameters from the environment:
#   DC_KIND  simple (umqtt.simple 1.3.4), simple2, robust2 (fizista's 2.2.0 and ours),
#            chumicro (chumicro-mqtt)
#   DC_MODE  ir: connect, then DC_N operations DC_OP (valgrind counts the run)
#            alloc: connect, DC_N operations, then DC_N more with gc disabled: prints
#              the heap bytes and the socket calls of the second DC_N
#            heap: heap after import + connect (with the qstr pool filled first)
#            min: connect, subscribe QoS 1, publish QoS 1 to it, receive it; prints OK
#   DC_OP    loop (an empty operation: the loop's own cost), pub0, pub1, recv, idle,
#            sockwrite (a write() to the fake socket, no client code)
#   DC_PAD   how many dummy globals to define before the import (the name-order variant)
import sys
import gc
import io
from os import getenv
import time as _t

KIND = getenv("DC_KIND")
MODE = getenv("DC_MODE")
OP = getenv("DC_OP") or "loop"
N = int(getenv("DC_N") or 0)
PAD = int(getenv("DC_PAD") or 0)
for _i in range(PAD):  # shifts the heap (and so the code's addresses) before the import
    globals()["pad_%d" % _i] = _i

T = b"devcost/topic"  # no written piece starts with 0x32 or 0x82 (see Sock.write)
M = b"x" * 32
NOW = 100000  # the frozen clock: time-driven paths (timeouts, keep-alive) never run


def _pkt(op, body):
    return bytes((op, len(body))) + body


MSG = io.BytesIO(_pkt(0x30, b"\0" + bytes((len(T),)) + T + M))  # a QoS 0 PUBLISH
if MODE == "min":  # the QoS 1 message the broker sends back, pid 1
    MSG = io.BytesIO(_pkt(0x32, b"\0" + bytes((len(T),)) + T + b"\0\1hello"))
MSGLEN = len(MSG.getvalue())
ACK = io.BytesIO(bytearray(4))
ACKB = bytearray(b"\x40\x02\0\0")
SUB = io.BytesIO(bytearray(5))
SUBB = bytearray(b"\x90\x03\0\0\1")
C = [0]  # socket calls (of the fake socket's and poll object's methods)


class Sock:
    # A connected TCP socket to a broker that answers at once: CONNACK first; a PUBACK
    # for each QoS 1 PUBLISH written, a SUBACK for each SUBSCRIBE (pids counted 1, 2,
    # ...: each client numbers its packets so), in order; then `msgs` copies of MSG.
    # A read gets at most the rest of the current packet. Nothing due: None (read,
    # readinto) or OSError(EAGAIN) (recv, recv_into) when non-blocking.
    def __init__(s, *a):
        s.src = io.BytesIO(b" \x02\0\0")
        s.end = 4
        s.blocking = True
        s.pid = 0
        s.ring = bytearray(16)
        s.head = s.tail = 0
        s.msgs = 0
        s.echo = MODE == "min"

    def _more(s):
        # the current packet is all read: the next one due, if any
        if s.head != s.tail:
            k = s.ring[s.head & 15]
            s.head += 1
            if k == 3:
                s.src = MSG
                s.end = MSGLEN
            else:
                s.pid += 1
                if k == 1:  # (no tuple: the fake broker allocates nothing per packet)
                    b = ACKB
                    s.src = ACK
                else:
                    b = SUBB
                    s.src = SUB
                b[2] = s.pid >> 8
                b[3] = s.pid & 255
                s.src.seek(0)
                s.end = s.src.write(b)
        elif s.msgs:
            s.msgs -= 1
            s.src = MSG
            s.end = MSGLEN
        else:
            return False
        s.src.seek(0)
        return True

    def _none(s, e):
        if s.blocking:
            raise OSError("fake socket: a blocking read with nothing due")
        if e:
            raise OSError(11)  # EAGAIN

    def _due(s, k):
        k = 1 if k == 0x32 else 2
        s.ring[s.tail & 15] = k
        s.tail += 1
        if k == 1 and s.echo:
            s.ring[s.tail & 15] = 3
            s.tail += 1

    def write(s, b, n=-1, m=-1):
        # write(buf), write(buf, len) or write(buf, off, len): all is taken at once. A
        # piece that starts with a QoS 1 PUBLISH's or a SUBSCRIBE's first byte makes
        # its answer due (no other piece any client writes here starts so)
        C[0] += 1
        k = b[0]
        if k == 0x32 or k == 0x82:
            s._due(k)
        return len(b) if n < 0 else n if m < 0 else m

    def send(s, b):
        return s.write(b)

    sendall = send

    def read(s, n=-1):
        C[0] += 1
        if s.src.tell() < s.end or s._more():
            return s.src.read(n)
        return s._none(0)

    def recv(s, n):
        C[0] += 1
        if s.src.tell() < s.end or s._more():
            return s.src.read(n)
        return s._none(1)

    def readinto(s, b, n=-1):
        C[0] += 1
        if s.src.tell() < s.end or s._more():
            return s.src.readinto(b, n) if n >= 0 else s.src.readinto(b)
        return s._none(0)

    def recv_into(s, b, n=0):
        C[0] += 1
        if s.src.tell() < s.end or s._more():
            return s.src.readinto(b, n) if n else s.src.readinto(b)
        return s._none(1)

    def ready(s):
        if s.head != s.tail or s.msgs:
            return True
        return s.src.tell() < s.end

    def setblocking(s, f):
        C[0] += 1
        s.blocking = f

    def settimeout(s, t):
        C[0] += 1
        s.blocking = t is None or t > 0

    def setsockopt(s, *a):
        C[0] += 1

    def connect(s, a):
        C[0] += 1

    def close(s):
        C[0] += 1


class Poll:
    def register(p, s, m=5):
        C[0] += 1
        p.s = s
        p.m = m

    modify = register

    def unregister(p, s):
        C[0] += 1

    def poll(p, t=-1):
        C[0] += 1
        if p.m & 1 and p.s.ready():
            return [(p.s, 1)]
        if p.m & 4:
            return [(p.s, 4)]
        return []

    def ipoll(p, t=-1, f=0):
        return p.poll(t)


class socket:
    AF_INET = 2
    SOCK_STREAM = 1
    IPPROTO_TCP = 6
    SOL_SOCKET = 1
    TCP_NODELAY = 1
    socket = Sock

    def getaddrinfo(host, port, *a):
        return [(2, 1, 6, "", (host, port))]


class select:
    POLLIN = 1
    POLLOUT = 4
    POLLERR = 8
    POLLHUP = 16

    def poll():
        return Poll()


class time:
    def ticks_ms():
        return NOW

    def ticks_us():
        return NOW * 1000

    ticks_cpu = ticks_us


for _n in dir(_t):
    if not hasattr(time, _n):
        setattr(time, _n, getattr(_t, _n))
for _n, _m in (("socket", socket), ("select", select), ("time", time)):
    sys.modules[_n] = sys.modules["u" + _n] = _m
ticks_ms = time.ticks_ms


def fill_qstr_pool():
    # Intern dummy names until the interned-string pool allocates a new block of at
    # least 4000 bytes (640 entries on a 32-bit port): the import and connect that
    # follow then add names to that block, not a new one of their own.
    class Q:
        pass

    gc.collect()
    i = 0
    while i < 5000:
        s = "qfill_%d" % i
        a = gc.mem_alloc()
        hasattr(Q, s)  # interns s
        if gc.mem_alloc() - a > 4000:
            return i
        i += 1
    raise OSError("no qstr pool step")


got = 0
acked = 0


def cb2(t, m):
    global got
    got += 1


def cb4(t, m, r=0, d=0):
    global got
    got += 1


def st(pid, s):
    global acked
    if s == 1:
        acked += 1


def cbp(t, p):
    global acked
    acked += 1


def load():
    if KIND == "simple":
        from umqtt.simple import MQTTClient
    elif KIND == "simple2":
        from umqtt.simple2 import MQTTClient
    elif KIND == "robust2":
        from umqtt.robust2 import MQTTClient
    else:
        from chumicro_mqtt import MQTTClient
    return MQTTClient


def connect(cls):
    if KIND == "chumicro":
        c = cls(Sock(), client_id="devcost", keep_alive_seconds=0)
        c.on_message = cb2
        c.connect()
        k = 0
        while c.state != "connected" and k < 20:
            c.handle(ticks_ms())
            k += 1
        if k == 20:
            raise OSError("chumicro: not connected: %r" % (c.state,))
        return c
    c = cls("devcost", "127.0.0.1", 1883)
    if KIND == "simple":
        c.set_callback(cb2)
    else:
        c.set_callback(cb4)
        c.set_callback_status(st)
    c.connect()
    if getattr(c, "conn_issue", None):  # robust2 reports instead of raising
        raise OSError("connect failed: %r" % (c.conn_issue,))
    return c


# -- the operations: f(c), called DC_N times


def nop(c):
    pass


def sockwrite(c):  # the fake socket's own cost: one write() of a QoS 0 PUBLISH
    SOCK.write(PUB0)


PUB0 = b"\x30\x2f\0\x0d" + T + M


def pub0(c):
    c.publish(T, M)


def pub0_chu(c):
    c.publish(T, M)
    c.handle(ticks_ms())


def pub1(c):
    # simple 1.3.4's publish() returns once the PUBACK is in; the others: until the
    # status callback reports it
    a = acked
    c.publish(T, M, qos=1)
    k = 0
    while acked == a:
        c.check_msg()
        k += 1
        if k > 9:
            raise OSError("no PUBACK")


def pub1_simple(c):
    c.publish(T, M, qos=1)


def pub1_chu(c):
    a = acked
    c.publish(T, M, qos=1, on_publish=cbp)
    k = 0
    while acked == a:
        c.handle(ticks_ms())
        k += 1
        if k > 9:
            raise OSError("no PUBACK")


def recv(c):
    g = got
    k = 0
    while got == g:
        c.check_msg()
        k += 1
        if k > 9:
            raise OSError("no message")


def recv_chu(c):
    g = got
    k = 0
    while got == g:
        c.handle(ticks_ms())
        k += 1
        if k > 9:
            raise OSError("no message")


def idle(c):
    c.check_msg()


def idle_chu(c):
    c.handle(ticks_ms())


OPS = {"sockwrite": sockwrite, "loop": nop, "pub0": pub0, "pub1": pub1, "recv": recv, "idle": idle}
if KIND == "simple":
    OPS["pub1"] = pub1_simple
if KIND == "chumicro":
    OPS.update(pub0=pub0_chu, pub1=pub1_chu, recv=recv_chu, idle=idle_chu)


def run(f, c, n):
    for i in range(n):
        f(c)


def main():
    if MODE == "heap":
        print("FILL", fill_qstr_pool())
        import micropython

        micropython.qstr_info()
        gc.collect()
        a = gc.mem_alloc()
        c = connect(load())
        gc.collect()
        print("HEAP", gc.mem_alloc() - a)
        micropython.qstr_info()
        return
    c = connect(load())
    if MODE == "min":
        c.subscribe(T, 1)
        if KIND == "chumicro":
            c.publish(T, b"hello", qos=1, on_publish=cbp)
            step = idle_chu
        else:
            c.publish(T, b"hello", qos=1)
            step = idle
        k = 0
        while (got < 1 or KIND != "simple" and acked < 1) and k < 20:
            step(c)
            k += 1
        if got == 1:
            print("OK")
        return
    global SOCK
    f = OPS[OP]
    sock = SOCK = c._socket if KIND == "chumicro" else c.sock
    if OP == "recv":
        sock.msgs = 2 * N
    if MODE == "ir":
        run(f, c, N)
    else:
        run(f, c, N)  # warm: what a first call does once is not per-operation cost
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        run(nop, c, N)
        b = gc.mem_alloc()
        s1 = sum(C)
        run(f, c, N)
        e = gc.mem_alloc()
        gc.enable()
        print("ALLOC", (e - b) - (b - a))
        print("CALLS", sum(C) - s1)
    if OP == "recv" and got != (N if MODE == "ir" else 2 * N):
        raise OSError("received %d" % got)
    print("DONE", got, acked)


main()
