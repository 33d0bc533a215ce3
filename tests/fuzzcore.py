# The fuzzer's core, on MicroPython and CPython alike: feed a broker byte stream to a
# connected umqtt.simple2 client through the scripted fake socket (fakesock.py), call
# check_msg() until the stream is used up, and check
#   - robustness: check_msg() only returns None or a packet type, or raises
#     MQTTException with a code of umqtt/errno.py; never anything else, never more
#     calls than the stream can feed (no loop that makes no progress); the receive
#     buffer never grows past max_size (it starts at 64 bytes); after an error the
#     socket is closed and the client says "not connected";
#   - correctness: what the client did (packet types returned, messages delivered,
#     statuses reported, bytes written back, the error raised) equals what model()
#     predicts from the README's rules, written here independently of simple2's code.
#     As the model reads the stream whole and the client in the pieces the fake
#     socket gives it, this also checks that the way the stream is cut changes nothing.
#
# An input is a dict: data (the broker's bytes after CONNACK), cuts (offsets where the
# socket says "would block" once), rmax (the most bytes one read returns, 0: no limit),
# max_size (the client's), eof (the broker closes after data), reset (instead, a read
# after data raises OSError 104, ECONNRESET), wfail (k >= 0: the connection breaks
# after the client wrote k acknowledgements, the next write raises OSError 32, EPIPE),
# wplan (fakesock write plan: bytes accepted per write, None for "would block").
# Stored as a file: one header line "umqtt-fuzz 1 key=value ...", then the raw data.
#
# gen(rng) makes inputs from a seeded PRNG that gives the same numbers on both
# interpreters, so a seed names an input everywhere (fuzz_mp.py, fuzz_long.py).
import fakesock
from bytecases import varint
from checks import connected as fake_connected, short
from fakesock import EOF
from umqtt import errno
from umqtt.simple2 import MQTTException

# every code umqtt/errno.py defines for an exception
CODES = set()
for _k in dir(errno):
    if _k[0] == "E":
        CODES.add(getattr(errno, _k))

INFLIGHT = (1, 2, 3, 4)  # pids in flight when the stream starts: see connected()


class Failure(AssertionError):
    pass


# -- the input file format


def dumps(inp):
    head = "umqtt-fuzz 1 max_size=%d rmax=%d eof=%d reset=%d wfail=%d cuts=%s wplan=%s" % (
        inp["max_size"],
        inp["rmax"],
        1 if inp["eof"] else 0,
        1 if inp.get("reset") else 0,
        inp.get("wfail", -1),
        ",".join(str(x) for x in inp["cuts"]) or "-",
        ",".join("N" if x is None else str(x) for x in inp["wplan"]) or "-",
    )
    return head.encode() + b"\n" + bytes(inp["data"])


def loads(b):
    i = b.index(b"\n")
    f = b[:i].decode().split()
    if f[:2] != ["umqtt-fuzz", "1"]:
        raise ValueError("not a umqtt-fuzz 1 file")
    kv = {}
    for x in f[2:]:
        k, v = x.split("=", 1)
        kv[k] = v
    lst = lambda v: [] if v == "-" else v.split(",")  # noqa: E731
    return {
        "data": bytes(b[i + 1 :]),
        "max_size": int(kv["max_size"]),
        "rmax": int(kv.get("rmax", "0")),
        "eof": kv.get("eof", "0") == "1",
        "reset": kv.get("reset", "0") == "1",
        "wfail": int(kv.get("wfail", "-1")),
        "cuts": [int(x) for x in lst(kv.get("cuts", "-"))],
        "wplan": [None if x == "N" else int(x) for x in lst(kv.get("wplan", "-"))],
    }


# -- the model: what the client must do with a stream, by the README's rules


def _s16(n):
    return bytes([n >> 8 & 0xFF, n & 0xFF])


RESET = "OSError 104"  # the outcomes that are an OSError, not an MQTTException
EPIPE = "OSError 32"


def model(data, max_size, eof, inflight=INFLIGHT, reset=False, wfail=-1):
    """Returns (types, msgs, stats, out, code): the packet types check_msg() returns in
    order, the messages delivered (topic, msg, retained, dup), the statuses (pid,
    status), the bytes written, and the MQTTException code that ends it (None: the
    stream just ends, the connection is still up; RESET or EPIPE: that OSError)."""
    types, msgs, stats = [], [], []
    out = bytearray()
    fl = set(inflight)  # our flows awaiting an answer
    q2 = set()  # incoming QoS 2 pids delivered, awaiting PUBREL
    n = len(data)
    end = RESET if reset else errno.ECONCLOSE if eof else None  # what running out of data means
    pos = 0

    def done(pid, status, last):
        if pid in fl:
            if last:
                fl.discard(pid)
            stats.append((pid, status))
        elif last:
            stats.append((pid, errno.SUNKNOWNPID))

    while True:
        if pos >= n:
            return types, msgs, stats, bytes(out), end
        op = data[pos]
        # Remaining Length: 1 to 4 bytes, 7 bits each, top bit "more follows" [MQTT-2.2.3]
        rem = 0
        i = 1
        while True:
            if pos + i >= n:
                return types, msgs, stats, bytes(out), end
            b = data[pos + i]
            rem |= (b & 0x7F) << (7 * (i - 1))
            if not b & 0x80:
                break
            if i == 4:  # a fifth length byte: malformed
                return types, msgs, stats, bytes(out), errno.EPROTO
            i += 1
        pos += i + 1
        t = op & 0xF0
        # what a client may receive: PUBLISH with QoS 0-2; PUBACK, PUBREC, PUBREL (flags
        # 0010), PUBCOMP, UNSUBACK with a pid only; SUBACK with a pid and at least one
        # code, the whole packet within max_size; PINGRESP empty. Anything else: EPROTO.
        if t == 0x30:
            ok = op & 6 != 6
        elif op in (0x40, 0x50, 0x62, 0x70, 0xB0):
            ok = rem == 2
        elif op == 0x90:
            ok = 2 < rem <= max_size
        elif op == 0xD0:
            ok = rem == 0
        else:
            ok = False
        if not ok:
            return types, msgs, stats, bytes(out), errno.EPROTO
        if t == 0x30:
            q = op >> 1 & 3
            m = min(rem, max_size)  # what the client holds of it
            if pos + m > n:
                return types, msgs, stats, bytes(out), end
            body = data[pos : pos + m]
            big = rem > max_size
            hl = (body[0] << 8 | body[1]) + (4 if q else 2) if m >= 2 else m + 1
            if hl > m:  # topic (and pid) not within what the client holds
                return types, msgs, stats, bytes(out), errno.ETOOBIG if big else errno.EPROTO
            pid = body[hl - 2] << 8 | body[hl - 1] if q else 0
            if q and not pid or hl == (4 if q else 2):  # pid 0, or an empty topic
                return types, msgs, stats, bytes(out), errno.EPROTO
            if pos + rem > n:  # the skipped rest of an over-size message
                return types, msgs, stats, bytes(out), end
            pos += rem
            if big:
                stats.append((pid, errno.SOVERSIZE))
            elif q < 2 or pid not in q2:
                tl = hl - (4 if q else 2)
                msgs.append((bytes(body[2 : 2 + tl]), bytes(body[hl:]), bool(op & 1), bool(op & 8)))
            if q == 2:
                q2.add(pid)
            if q:
                if len(out) == 4 * wfail:
                    return types, msgs, stats, bytes(out), EPIPE
                out += bytes([0x40 if q == 1 else 0x50, 2]) + _s16(pid)
            types.append(0x30)
            continue
        if pos + rem > n:
            return types, msgs, stats, bytes(out), end
        body = data[pos : pos + rem]
        pos += rem
        v = body[0] << 8 | body[1] if rem >= 2 else None
        if op in (0x62, 0x50) and len(out) == 4 * wfail:
            if op == 0x62:
                q2.discard(v)
            return types, msgs, stats, bytes(out), EPIPE
        if op == 0x62:  # PUBREL: answered with PUBCOMP, the pid forgotten
            q2.discard(v)
            out += b"\x70\x02" + _s16(v)
        elif op == 0x50:  # PUBREC: answered with PUBREL
            out += b"\x62\x02" + _s16(v)
        elif op == 0x90:  # every code checked before any is reported
            for k in range(2, rem):
                c = body[k]
                if c > 2 and c != 0x80:
                    return types, msgs, stats, bytes(out), errno.EPROTO
            for k in range(2, rem):
                done(v, errno.SDELIVERED if body[k] < 3 else errno.SREFUSED, k == rem - 1)
        elif op != 0xD0:  # PUBACK, PUBCOMP, UNSUBACK
            done(v, errno.SDELIVERED, True)
        types.append(t)


# -- running the client on an input


def connected(max_size):
    """A fresh fake network and a client connected through it, with four flows in
    flight: SUBSCRIBE pid 1, PUBLISH QoS 1 pid 2, PUBLISH QoS 2 pid 3, UNSUBSCRIBE pid 4.
    Returns (net, client, rec), rec a checks.Rec on both callbacks."""
    net, c, rec = fake_connected(client_id="fuzz", max_size=max_size, message_timeout=3600)
    c.subscribe(b"f/#", 2)
    c.publish(b"f/1", b"one", qos=1)
    c.publish(b"f/2", b"two", qos=2)
    c.unsubscribe(b"g")
    if sorted(c.rcv_pids) != list(INFLIGHT):
        raise Failure("pids in flight: %r" % (sorted(c.rcv_pids),))
    net.take()
    return net, c, rec


def script(inp):
    """The fake socket's read script for an input: its data, with a would-block at each
    cut, and EOF at the end if the broker closes."""
    data = inp["data"]
    items = []
    last = 0
    for x in sorted(set(inp["cuts"])):
        if 0 <= x <= len(data):
            items.append(data[last:x])
            items.append(None)
            last = x
    items.append(data[last:])
    if inp["eof"]:
        items.append(EOF)
    return items


def execute(inp):
    """Runs the client on inp; checks the robustness properties as it goes (raises
    Failure). Returns (types, msgs, stats, out, code) as model() does."""
    max_size = inp["max_size"]
    cap = max(64, max_size)
    net, c, rec = connected(max_size)
    try:
        net.rmax = inp["rmax"]
        net.write_plan(inp["wplan"])
        items = script(inp)
        net.feed(*items)
        reset = 2 if inp.get("reset") and not inp["eof"] else 0
        wfail = inp.get("wfail", -1)
        tail = False
        if reset or wfail >= 0:
            read, write = net._read, net._write

            def _read(buf, n):
                if reset and net.ri >= len(net.rx):
                    raise OSError(104)
                return read(buf, n)

            def _write(buf, off, n):
                if len(net.out) == 4 * wfail:
                    raise OSError(32)
                return write(buf, off, n)

            net._read = _read
            net._write = _write
        limit = len(inp["data"]) + len(items) + 3
        types = []
        code = None
        calls = 0
        while True:
            calls += 1
            if calls > limit:
                raise Failure("check_msg() called %d times and the stream is not used up" % calls)
            try:
                r = c.check_msg()
            except MQTTException as e:
                code = e.args[0] if e.args else None
                if code not in CODES:
                    raise Failure("MQTTException%r: not a code of umqtt/errno.py" % (e.args,))
                break
            except OSError as e:  # only the fake socket's own, when asked for
                code = "OSError %d" % e.args[0]
                if not (code == RESET and reset or code == EPIPE and wfail >= 0):
                    raise Failure("OSError %r from check_msg" % (e,))
                break
            except Failure:
                raise
            except Exception as e:
                raise Failure("check_msg() raised %s: %r" % (type(e).__name__, e))
            if len(c._in) > cap:
                raise Failure("receive buffer %d bytes > max_size %d" % (len(c._in), max_size))
            if r is None:
                if not net.pending():
                    if reset != 2:
                        break
                    # the next read raises ECONNRESET: the next call must see it
                    if tail:
                        raise Failure("check_msg() read nothing past the end of the stream")
                    tail = True
            elif r not in (0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xB0, 0xD0):
                raise Failure("check_msg() returned %r" % (r,))
            else:
                types.append(r)
        if len(c._in) > cap:
            raise Failure("receive buffer %d bytes > max_size %d" % (len(c._in), max_size))
        if code is not None:
            if c.sock is not None or not net.sock.closed:
                raise Failure("error %s but the connection was not closed" % code)
            try:
                c.check_msg()
                raise Failure("check_msg() after error %s did not raise" % code)
            except MQTTException as e:
                if e.args[0] != errno.ECONNOT:
                    raise Failure("check_msg() after an error raised %r, not ECONNOT" % (e.args,))
        return types, rec.msgs, rec.st, net.take(), code
    finally:
        fakesock.uninstall()


def check(inp):
    """Both properties on one input: raises Failure saying what differed."""
    got = execute(inp)
    want = model(inp["data"], inp["max_size"], inp["eof"], INFLIGHT,
                 inp.get("reset") and not inp["eof"], inp.get("wfail", -1))
    names = ("packet types", "messages", "statuses", "bytes written", "error code")
    for k in range(5):
        if got[k] != want[k]:
            raise Failure("%s: client %s, model %s" % (names[k], short(got[k], 300), short(want[k], 300)))
    return got


# -- a PRNG with the same numbers on both interpreters, and the input generator


class Rng:
    """xorshift32, seeded."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF or 1
        for _ in range(4):
            self.u32()

    def u32(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def below(self, n):
        return self.u32() % n if n > 0 else 0

    def chance(self, k, n=100):
        return self.below(n) < k

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def bytes(self, n):
        return bytes(self.u32() & 0xFF for _ in range(n))




MAX_SIZES = (0, 1, 2, 3, 5, 16, 63, 64, 65, 100, 300, 16384)
PIDS = (0, 1, 2, 3, 4, 5, 0xFF, 0x100, 0xFFFF)
OPS = (0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x62, 0x70, 0x80, 0x82, 0x90,
       0xA0, 0xA2, 0xB0, 0xC0, 0xD0, 0xE0, 0xF0)


def gen_pid(r):
    return r.pick(PIDS) if r.chance(80) else r.below(0x10000)


def gen_publish(r, max_size):
    q = r.pick((0, 0, 1, 1, 2, 2, 3)) if r.chance(95) else 3
    flags = q << 1 | (r.below(2)) | (r.below(2) << 3)
    if r.chance(70):
        topic = r.pick((b"f/1", b"t", b"", b"a/b/c", b"\x00", b"\xff\xfe", b"f/#", b"+"))
    else:
        topic = r.bytes(r.below(40))
    k = r.below(6)
    if k == 0:
        n = 0
    elif k == 1:  # around max_size
        n = max(0, max_size - len(topic) - 4 + r.below(9) - 4)
    else:
        n = r.below(50)
    if max_size >= 16384 and n > 100:
        n = r.below(100)
    msg = r.bytes(n)
    pid = gen_pid(r)
    body = _s16(len(topic)) + topic + (_s16(pid) if q else b"") + msg
    return bytes([0x30 | flags]) + varint(len(body)) + body


def gen_ack(r):
    op = r.pick((0x40, 0x50, 0x62, 0x70, 0xB0)) if r.chance(90) else r.pick(OPS)
    if r.chance(5):
        op ^= 1 << r.below(4)
    return bytes([op, 2]) + _s16(gen_pid(r))


def gen_suback(r):
    n = r.below(5) + (0 if r.chance(5) else 1)
    codes = bytes(r.pick((0, 1, 2, 0x80)) if r.chance(90) else r.below(256) for _ in range(n))
    body = _s16(gen_pid(r)) + codes
    return bytes([0x90]) + varint(len(body)) + body


def gen_valid(r, max_size):
    """A well-formed packet a broker may send (it may still be over max_size)."""
    k = r.below(100)
    if k < 45:
        q = r.below(3)
        topic = r.pick((b"f/1", b"t", b"", b"a/b/c", b"\xc3\xa9t\xc3\xa9", b"t2", b"f/2"))
        n = r.below(30) if r.chance(90) else r.below(300)
        body = _s16(len(topic)) + topic + (_s16(r.pick(PIDS[1:])) if q else b"") + r.bytes(n)
        return bytes([0x30 | q << 1 | r.below(2) | r.below(2) << 3]) + varint(len(body)) + body
    if k < 75:
        return bytes([r.pick((0x40, 0x50, 0x62, 0x70, 0xB0)), 2]) + _s16(r.pick(PIDS))
    if k < 90:
        codes = bytes(r.pick((0, 1, 2, 0x80)) for _ in range(1 + r.below(4)))
        return bytes([0x90, 2 + len(codes)]) + _s16(r.pick(PIDS)) + codes
    return b"\xd0\x00"


def gen_packet(r, max_size):
    k = r.below(100)
    if k < 35:
        return gen_publish(r, max_size)
    if k < 65:
        return gen_ack(r)
    if k < 80:
        return gen_suback(r)
    if k < 88:
        return b"\xd0\x00"
    if k < 92:  # a bad or odd Remaining Length: non-minimal, 4 bytes, a fifth byte
        op = r.pick(OPS + (0x30, 0x32, 0xD0, 0x40))
        lb = r.pick((b"\x80\x00", b"\x82\x00", b"\xff\xff\xff\x7f", b"\x80\x80\x80\x80\x01",
                     b"\xff\xff\xff\xff\x7f", b"\x80\x80\x80\x00", b"\x02"))
        return bytes([op]) + lb + r.bytes(r.below(8))
    if k < 96:  # an over-size PUBLISH: length over max_size, the rest maybe there
        q = r.below(3)
        topic = r.bytes(r.below(6))
        rem = max_size + 1 + r.below(40) if r.chance(80) else r.pick((0x7F, 0x3FFF, 0x1FFFFF, 0xFFFFFFF))
        body = _s16(len(topic)) + topic + (_s16(gen_pid(r)) if q else b"")
        if rem < len(body):
            rem = len(body)
        have = rem - len(body) if rem < 20000 and r.chance(80) else r.below(30)
        return bytes([0x30 | q << 1]) + varint(rem) + body + r.bytes(have)
    op = r.pick(OPS) | (r.below(16) if r.chance(30) else 0)
    return bytes([op]) + varint(r.below(10)) + r.bytes(r.below(10))


def mutate(r, data):
    d = bytes(data)
    for _ in range(1 + r.below(4)):
        k = r.below(7)
        if not d:
            d = r.bytes(1 + r.below(4))
            continue
        i = r.below(len(d))
        if k == 0:  # flip a bit
            x = d[i] ^ 1 << r.below(8)
        elif k == 1:  # an interesting byte
            x = r.pick((0, 1, 2, 0x7F, 0x80, 0xFF, 0x30, 0x32, 0x34, 0x36, 0x62, 0x90, 0xD0))
        elif k == 2:  # insert
            d = d[:i] + r.bytes(1 + r.below(4)) + d[i:]
            continue
        elif k == 3:  # delete
            d = d[:i] + d[i + 1 + r.below(4) :]
            continue
        elif k == 4:  # truncate
            d = d[:i]
            continue
        elif k == 5:  # duplicate a piece
            d = d[:i] + d[i : i + 1 + r.below(20)] + d[i:]
            continue
        else:  # random byte
            x = r.below(256)
        d = d[:i] + bytes([x]) + d[i + 1 :]
    return d


def gen(r):
    """One input from the PRNG."""
    max_size = r.pick(MAX_SIZES) if r.chance(90) else r.below(400)
    kind = r.below(10)
    if kind == 0:  # random bytes
        data = r.bytes(r.below(64))
    elif kind < 4:  # well-formed packets only
        data = b"".join(gen_valid(r, max_size) for _ in range(1 + r.below(8)))
    else:  # any, some of them malformed, or mutated
        data = b"".join(gen_packet(r, max_size) for _ in range(1 + r.below(6)))
        if kind >= 7:
            data = mutate(r, data)
    n = len(data)
    cuts = []
    if r.chance(60) and n:
        cuts = sorted(set(r.below(n + 1) for _ in range(1 + r.below(6))))
    rmax = r.pick((0, 0, 0, 1, 2, 3, 7))
    wplan = []
    if r.chance(20):
        wplan = [r.pick((None, 1, 2, 3)) for _ in range(r.below(6))]
    eof = r.chance(30)
    return {"data": data, "cuts": cuts, "rmax": rmax, "max_size": max_size, "eof": eof,
            "reset": not eof and r.chance(10), "wfail": r.below(4) if r.chance(10) else -1,
            "wplan": wplan}


def run_seeds(first, count, report=None):
    """check() the inputs of seeds first .. first+count-1; returns the failures as
    [(seed, input, message)] (report(seed, input, message) is called for each)."""
    bad = []
    for seed in range(first, first + count):
        inp = gen(Rng(seed))
        try:
            check(inp)
        except Exception as e:  # Failure, or a bug of the harness: both are reported
            msg = "%s: %s" % (type(e).__name__, e)
            bad.append((seed, inp, msg))
            if report:
                report(seed, inp, msg)
    return bad
