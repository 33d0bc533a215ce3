# A scripted fake network for byte-level tests of umqtt.simple2, on MicroPython and CPython.
#
#   net = fakesock.install()      # patches simple2.socket, simple2.select, simple2.ticks_ms
#   net.feed(b"\x20\x02", None, b"\x00\x00")
#   ... c.connect() ...
#   net.take()                    # the bytes the client wrote, and the log is emptied
#   fakesock.uninstall()
#
# Incoming data is a script, a list of items consumed in order:
#   bytes   delivered to readinto(), possibly in smaller pieces (net.rmax, or what was asked)
#   None    one "would block" answer of readinto(); poll() does not wait for it
#   EOF     readinto() returns 0 from then on
#   an int  nothing arrives for that many ms: poll() advances the fake clock through it
#   OSError readinto() raises it, once (e.g. OSError(104), a reset)
# The write side is scripted with net.wplan (items consumed one per write(): an int, the
# most bytes accepted; None, "would block") and, once the plan is used up, net.wmax (the
# most bytes one write() accepts; 0: none ever, "would block" each time).
#
# poll() never sleeps: when the client would wait, the fake clock moves on by the poll
# timeout instead (or by what is left of an int item), so timeouts cost no real time.
from umqtt import simple2

POLLIN = 1
POLLOUT = 4
START = 1000000  # the fake clock's first reading, as an offset from ticks 0


class _Eof:
    def __repr__(self):
        return "EOF"


EOF = _Eof()


class Clock:
    """A ticks_ms() that moves only when told to; ticks_add/ticks_diff stay the real ones."""

    def __init__(self, start=START):
        self.now = self.t0 = simple2.ticks_add(0, start)

    def ticks_ms(self):
        return self.now

    def advance(self, ms):
        self.now = simple2.ticks_add(self.now, int(ms))

    def elapsed(self):
        return simple2.ticks_diff(self.now, self.t0)


class Net:
    """What the fake socket module, the sockets and the poll objects share."""

    def __init__(self, start=START):
        self.clock = Clock(start)
        self.rx = []  # the incoming script
        self.ri = 0  # index of its next item
        self.rmax = 0  # the most bytes one readinto() delivers; 0: as many as asked
        self.out = bytearray()  # every byte written since the last take()
        self.writes = []  # the bytes each accepting write() took, since the last take()
        self.wtimes = []  # the fake clock's elapsed() at each of those writes
        self.wplan = []
        self.wmax = 1 << 30
        self.wcycle = False  # True: the write plan repeats forever
        self.sockets = []  # every socket opened, in order
        self.addrinfo = []  # (host, port) of each getaddrinfo()
        self.unresolved = False  # True: getaddrinfo() returns []
        self.polls = 0
        self.poll_limit = 200000  # a client looping on poll() forever fails the test

    # -- the script

    def feed(self, *items):
        for x in items:
            if isinstance(x, (bytes, bytearray, memoryview)):
                x = bytes(x)
                if not x:
                    continue
            elif not (x is None or x is EOF or isinstance(x, (int, OSError))):
                raise TypeError("script item %r" % (x,))
            self.rx.append(x)

    def pending(self):
        """The script items not consumed yet."""
        return self.rx[self.ri :]

    def _head(self):
        if self.ri < len(self.rx):
            return self.rx[self.ri]
        return None

    def _pop(self):
        self.ri += 1
        if self.ri > 4096 and self.ri * 2 > len(self.rx):
            self.rx = self.rx[self.ri :]
            self.ri = 0

    def take(self):
        """The bytes written since the last take(); the write log starts afresh."""
        b = bytes(self.out)
        self.out = bytearray()
        self.writes = []
        self.wtimes = []
        return b

    def write_plan(self, plan, cycle=False):
        self.wplan = list(plan)
        self.wcycle = cycle

    @property
    def sock(self):
        return self.sockets[-1] if self.sockets else None

    # -- what the sockets do

    def _read(self, buf, n):
        while True:
            if self.ri >= len(self.rx):
                return None
            x = self.rx[self.ri]
            if x is None:
                self._pop()
                return None
            if x is EOF:
                return 0
            if isinstance(x, OSError):  # the read fails with it (once)
                self._pop()
                raise x
            if isinstance(x, int):
                return None  # time has to pass first: poll() does that
            break
        k = min(n, len(x))
        if self.rmax:
            k = min(k, self.rmax)
        buf[0:k] = x[0:k]
        if k == len(x):
            self._pop()
        else:
            self.rx[self.ri] = x[k:]
        return k

    def _next_accept(self, consume):
        if self.wplan:
            k = self.wplan[0]
            if consume:
                self.wplan.pop(0)
                if self.wcycle:
                    self.wplan.append(k)
            return k
        return self.wmax or None

    def _write(self, buf, off, n):
        end = len(buf) if n < 0 else off + n
        k = self._next_accept(True)
        if k is None:
            return None
        d = bytes(buf[off : min(end, off + k)])
        self.out += d
        self.writes.append(d)
        self.wtimes.append(self.clock.elapsed())
        return len(d)

    def _readable(self):
        i = self.ri
        while i < len(self.rx) and self.rx[i] is None:
            i += 1
        return i < len(self.rx) and not isinstance(self.rx[i], int)

    def _idle(self, ms):
        # poll() found nothing to report: time passes, through the next int item if any
        i = self.ri
        while i < len(self.rx) and self.rx[i] is None:
            i += 1
        if i < len(self.rx):  # an int: it is what stands between now and the next data
            w = self.rx[i]
            if ms < 0 or ms >= w:
                ms = w
                self.rx.pop(i)  # spent: the data after it can be read now
            else:
                self.rx[i] = w - ms
        elif ms < 0:
            raise AssertionError("poll() with no timeout and nothing scripted to arrive")
        self.clock.advance(ms)

    def _poll(self, obj, mask, ms):
        self.polls += 1
        if self.polls > self.poll_limit:
            raise AssertionError("the client polled %d times: a loop that never ends?" % self.polls)
        ev = 0
        if mask & POLLIN and self._readable():
            ev |= POLLIN
        if mask & POLLOUT and self._next_accept(False) is not None:
            ev |= POLLOUT
        if ev:
            return [(obj, ev)]
        if mask & POLLIN:
            self._idle(ms)
        elif ms < 0:
            raise AssertionError("poll() with no timeout on a socket that never accepts")
        else:
            self.clock.advance(ms)
        return []


class FakeSocket:
    """MicroPython's stream API (readinto/write return None for "would block"), and the
    CPython socket calls umqtt._cpython._Sock makes (raising BlockingIOError instead)."""

    def __init__(self, net, af, type, proto):
        self.net = net
        self.family = (af, type, proto)
        self.closed = False
        self.blocking = True
        self.timeout = None
        self.addr = None
        self.opts = []

    def _check(self):
        if self.closed:
            raise OSError(9)  # EBADF

    def settimeout(self, t):
        self._check()
        self.timeout = t

    def connect(self, addr):
        self._check()
        self.addr = addr

    def setsockopt(self, level, opt, value):
        self._check()
        self.opts.append((level, opt, value))

    def setblocking(self, flag):
        self._check()
        self.blocking = flag

    def readinto(self, buf, n=None):
        self._check()
        if n is None or n > len(buf):
            n = len(buf)
        if n <= 0:
            raise AssertionError("readinto() asked for %d bytes: 0 would read as EOF" % n)
        return self.net._read(buf, n)

    def write(self, buf, off=0, n=-1):
        self._check()
        return self.net._write(buf, off, n)

    def close(self):
        self.closed = True

    # CPython
    def recv_into(self, buf, n=0):
        r = self.readinto(buf, n or len(buf))
        if r is None:
            raise BlockingIOError(11, "would block")
        return r

    def send(self, data):
        r = self.write(data, 0, len(data))
        if r is None:
            raise BlockingIOError(11, "would block")
        return r

    def fileno(self):
        return 1000 + self.net.sockets.index(self)


class FakePoll:
    def __init__(self, net):
        self.net = net
        self.obj = None
        self.mask = 0

    def register(self, obj, mask=POLLIN | POLLOUT):
        self.obj = obj
        self.mask = mask

    def modify(self, obj, mask):
        if obj is not self.obj:
            raise OSError(2)  # ENOENT: not registered
        self.mask = mask

    def poll(self, ms=-1):
        return self.net._poll(self.obj, self.mask, ms)


class SocketModule:
    SOCK_STREAM = 1
    AF_INET = 2

    def __init__(self, net):
        self.net = net

    def getaddrinfo(self, host, port, af=0, type=0, proto=0, flags=0):
        self.net.addrinfo.append((host, port))
        if self.net.unresolved:  # as some firmware answers a name it cannot resolve
            return []
        return [(2, 1, 6, "", ("10.0.0.1", port))]

    def socket(self, af=2, type=1, proto=0):
        s = FakeSocket(self.net, af, type, proto)
        self.net.sockets.append(s)
        return s


class SelectModule:
    POLLIN = POLLIN
    POLLOUT = POLLOUT

    def __init__(self, net):
        self.net = net

    def poll(self):
        return FakePoll(self.net)


_saved = None


def install(start=START):
    """Patch umqtt.simple2 to use a fresh fake network and clock; returns the Net.
    start: the clock's first reading as an offset from ticks 0 (negative: just before
    the ticks wrap around)."""
    global _saved
    uninstall()
    net = Net(start)
    _saved = (simple2.socket, simple2.select, simple2.ticks_ms)
    simple2.socket = SocketModule(net)
    simple2.select = SelectModule(net)
    simple2.ticks_ms = net.clock.ticks_ms
    return net


def uninstall():
    global _saved
    if _saved:
        simple2.socket, simple2.select, simple2.ticks_ms = _saved
        _saved = None
