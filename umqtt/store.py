# umqtt.store: robust2's unsent and in-flight messages, the incoming QoS 2 packet ids it
# holds, and its packet-id counter, kept on flash so that a device that deep-sleeps or
# loses power resumes its MQTT session without losing or repeating a message.
# MIT license; see LICENSE.
"""
    from umqtt.store import FileStore
    c = MQTTClient(...)
    c.store = FileStore("/mqtt.dat")
    n = c.store.load(c)        # messages kept from before the sleep or the power cut

FileStore is a journal: each change appends one record of its own (a message kept,
its state, done; an incoming QoS 2 pid held, released), flushed before the packet it
protects goes out. Each record carries its length and a 32-bit check, so a record torn
by a power cut is ignored and every record before it is used. When the journal is over
4 KB (COMPACT_MIN) and over 3 times the live state (COMPACT_RATIO), the live state is
written to path + ".tmp", which then replaces the journal.

A store of your own (RTC memory, an SD card, ...) subclasses Store and writes save()
and read(): every change then saves the whole state, c.snapshot(). dumps() and
loads() turn a snapshot into bytes and back, in the journal's format:

    from umqtt.store import Store, dumps, loads

    class RTCStore(Store):
        def save(self, snap):       # snap: (last_pid, records, held)
            machine.RTC().memory(dumps(snap))

        def read(self):             # the last snapshot saved; None for none
            return loads(machine.RTC().memory())

The client side (robust2): load(c) calls c.restore(last_pid, records, held) once,
where records is a list of [topic, msg, retain, qos, pid, state] in send order (state
0 queued, 1 in flight, 2 in flight past PUBREC) and held the incoming QoS 2 pids
awaiting PUBREL; c.snapshot() returns the same three. The event calls are add(c, rec),
state(c, pid, st), remove(c, pid), hold(c, pid), release(c, pid); they raise OSError
or MemoryError when the flash fails, and the store stays usable (the next call writes
the whole state anew). A Store saves c.snapshot() as it is at the call: the client
changes its own state first, then calls. A FileStore is right either way.
"""
import os
from struct import pack_into as _pack_into

try:
    from binascii import crc32 as _crc32
except ImportError:  # some small ports: see _mod_check
    _crc32 = None

# Record kinds (high nibble of a record's first byte; the low nibble is an argument).
# 0x0_ and 0xF_ are no kind: zeroed or erased flash is never taken for a record.
_BASE = 0x10  # last_pid: the packet-id counter, after the messages of a compaction
_ADD = 0x20  # pid, topic, payload; low nibble: state | retain << 2 | (qos - 1) << 3
_STATE = 0x30  # pid; low nibble: the new state
_DONE = 0x40  # pid
_HOLD = 0x50  # pid: incoming QoS 2, PUBREC sent or about to be
_RELEASE = 0x60  # pid

_P = 4294967291  # the largest prime below 2 ** 32


def _mod_check(b):
    # Where binascii.crc32 is missing: the record read as one big number, modulo a
    # prime just below 2**32. int.from_bytes() and % run in C (a few instructions per
    # byte, where a crc written in Python costs hundreds). It catches a torn record,
    # erased (0xFF) or zeroed bytes, stale bytes of an old file, and any change of up to
    # three bytes in a row; other damage passes with odds of about 1 in 4 billion, as
    # with crc32 (which also catches any 32-bit burst). Neither is proof against forgery.
    return int.from_bytes(b, "big") % _P


def _py_crc(b):
    # crc32 in Python, to read a file written where binascii.crc32 was present, once,
    # on a port without it (after a firmware change): slow, never used to write
    c = 0xFFFFFFFF
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 & -(c & 1))
    return c ^ 0xFFFFFFFF


# The file's first four bytes say which check its records carry.
_CHECKS = {b"UMJc": _crc32 or _py_crc, b"UMJm": _mod_check}
_MAGIC = _check = None


def _use(magic):
    # the check new files get (tests try the fallback with _use(b"UMJm"))
    global _MAGIC, _check
    _MAGIC = magic
    _check = _CHECKS[magic]


_use(b"UMJc" if _crc32 else b"UMJm")


def _vlen(n):  # bytes of n as a length (7 bits a byte, as MQTT's remaining length)
    return 1 if n < 0x80 else 2 if n < 0x4000 else 3 if n < 0x200000 else 4


def _msg_size(rec):
    # bytes of the record of message rec: kind, length, pid, topic's length, topic,
    # payload, check
    tl = len(rec[0])
    n = 2 + _vlen(tl) + tl + len(rec[1])
    return 5 + _vlen(n) + n


def _put_msg(b, mv, o, rec, check):
    # puts the record of message rec ([topic, msg, retain, qos, pid, state]) into b at
    # o (mv: memoryview(b)); returns where it ends. Into a buffer made ahead: no copies
    t, m = rec[0], rec[1]
    tl = len(t)
    ml = len(m)
    k = _ADD | rec[5] | (4 if rec[2] else 0) | (rec[3] - 1) << 3
    n = 3 + tl + ml  # the body's length, with a topic under 128 bytes
    if n < 0x80:
        _pack_into(">BBHB", b, o, k, n, rec[4], tl)
        h = o + 5
    elif n < 0x4000 and tl < 0x80:
        _pack_into(">BBBHB", b, o, k, n & 0x7F | 0x80, n >> 7, rec[4], tl)
        h = o + 6
    else:
        h = o
        n += _vlen(tl) - 1
        for x in (k, None, rec[4] >> 8, rec[4] & 0xFF, None):
            if x is None:  # a length: the body's, then the topic's
                while n > 0x7F:
                    b[h] = n & 0x7F | 0x80
                    h += 1
                    n >>= 7
                x = n
                n = tl
            b[h] = x
            h += 1
    mv[h : h + tl] = t
    h += tl
    mv[h : h + ml] = m
    h += ml
    _pack_into(">I", b, h, check(mv[o:h]))
    return h + 4


def _put_small(b, mv, o, kind, pid, check):
    # puts a record of kind with a pid for its body (8 bytes) into b at o
    _pack_into(">BBH", b, o, kind, 2, pid)
    _pack_into(">I", b, o + 4, check(mv[o : o + 4]))
    return o + 8


def _size(snap):
    # about the bytes dump() writes for snap, the live state (exact while each message
    # record's body is under 128 bytes, a byte or so short for each bigger one)
    recs = snap[1]
    n = 12 + 8 * len(snap[2]) + 9 * len(recs)  # magic, base, held; record overheads
    for r in recs:
        n += len(r[0]) + len(r[1])
    return n


def dump(f, snap, buf=None):
    """Writes snap, (last_pid, records, held), as a whole journal to f, in writes of at
    most 512 bytes (buf, a bytearray to use), so that the whole never sits in RAM;
    returns the bytes written."""
    check = _check
    last_pid, records, held = snap
    b = buf or bytearray(512)
    mv = memoryview(b)
    mv[:4] = _MAGIC
    o = 4
    n = 0
    for r in records:
        k = _msg_size(r)
        if o + k > len(b):
            n += _write(f, mv[:o])
            o = 0
        if k > len(b):  # a big one: a buffer of its own
            x = bytearray(k)
            n += _write(f, memoryview(x)[: _put_msg(x, memoryview(x), 0, r, check)])
        else:
            o = _put_msg(b, mv, o, r, check)
    # the counter after the messages: it is the pid last drawn, whatever theirs are
    for k, p in [(_BASE, last_pid)] + [(_HOLD, p) for p in held]:
        if o + 8 > len(b):
            n += _write(f, mv[:o])
            o = 0
        o = _put_small(b, mv, o, k, p, check)
    return n + _write(f, mv[:o])


def _write(f, b):
    if f.write(b) != len(b):  # a short write: a full disk on some ports
        raise OSError(28)
    return len(b)


def dumps(snap):
    """snap, (last_pid, records, held), as bytes."""
    b = _Bytes()
    dump(b, snap)
    return bytes(b.b)


def loads(data):
    """The snapshot (last_pid, records, held) dumps() made; None for no data, or for
    data that is not one; a torn tail is left out."""
    if not data:
        return None
    return parse(_Bytes(data))[0]


class _Bytes:
    # write() and read() on bytes in RAM (io.BytesIO is missing on some ports)
    def __init__(self, b=b""):
        self.b = bytearray() if not b else b
        self.i = 0

    def write(self, b):
        self.b += b
        return len(b)

    def read(self, n):
        i = self.i
        self.i = i + n
        return self.b[i : i + n]


class _Reader:
    # f read 512 bytes at a time; b[i:] is what is not used yet
    def __init__(self, f):
        self.f = f
        self.b = b""
        self.i = 0

    def need(self, k):  # True when k bytes are there from i on
        b = self.b
        if len(b) - self.i >= k:
            return True
        b = b[self.i :]
        while len(b) < k:
            x = self.f.read(max(512, k - len(b)))
            if not x:
                break
            b += x
        self.b = b
        self.i = 0
        return len(b) >= k


def parse(f):
    """Reads a journal from f to its end, or to its first record that is torn or
    damaged. Returns ((last_pid, records, held) or None, clean, magic, end): None when
    not one record is whole; clean is True when f ended right after a whole record; end
    is the bytes used."""
    magic = bytes(f.read(4))
    check = _CHECKS.get(magic)
    if not check:
        return None, False, None, 0
    rd = _Reader(f)
    last_pid = 0
    recs = {}  # pid: record
    order = []  # the records in send order, with some done ones (state -1) in between
    dead = 0
    held = []
    end = 4
    clean = False
    while True:
        # a record: kind, the body's length (1 to 4 bytes), body, check (4 bytes)
        if not rd.need(1):
            clean = True
            break
        rd.need(5)
        b, i = rd.b, rd.i
        kind = b[i]
        n = s = 0
        j = i + 1
        while True:
            if j >= len(b) or j > i + 4:
                n = -1
                break
            x = b[j]
            n |= (x & 0x7F) << s
            s += 7
            j += 1
            if x < 0x80:
                break
        if n < 2:
            break  # torn, or damaged: no record has a body under 2 bytes
        h = j - i
        if not rd.need(h + n + 4):
            break  # torn
        b, i = rd.b, rd.i
        j = i + h + n
        if check(b[i:j]) != int.from_bytes(b[j : j + 4], "big"):
            break  # damaged
        rd.i = j + 4
        k = kind & 0xF0
        a = kind & 0x0F
        if k < _BASE or k > _RELEASE:
            break  # a record of no known kind: taken as damage
        end += h + n + 4
        i += h
        pid = b[i] << 8 | b[i + 1]
        if k == _ADD:
            q = i + 2
            tl = s = 0
            while q < j:
                x = b[q]
                tl |= (x & 0x7F) << s
                s += 7
                q += 1
                if x < 0x80:
                    break
            r = [bytes(b[q : q + tl]), bytes(b[q + tl : j]), bool(a & 4), (a >> 3) + 1, pid, a & 3]
            last_pid = pid
            old = recs.get(pid)
            if old:  # written again after a compaction that had it already: same place
                old[:] = r
            else:
                recs[pid] = r
                order.append(r)
        elif k == _STATE:
            r = recs.get(pid)
            if r:
                r[5] = a & 3
        elif k == _DONE:
            r = recs.pop(pid, None)
            if r:
                r[0] = r[1] = None  # the payload freed now, the place later
                r[5] = -1
                dead += 1
                if dead > 16 and dead * 2 > len(order):
                    order = [r for r in order if r[5] >= 0]
                    dead = 0
        elif k == _HOLD:
            if pid not in held:
                held.append(pid)
        elif k == _RELEASE:
            if pid in held:
                held.remove(pid)
        else:
            last_pid = pid
    if end == 4:  # not one whole record: nothing to restore
        return None, clean, magic, end
    return (last_pid, [r for r in order if r[5] >= 0], held), clean, magic, end


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class Store:
    """A store that saves the whole state at each change: write save() and read().
    save() gets the client's snapshot(), whose records are live: save them in the call
    (as add() must its record), not a reference to them."""

    def load(self, c):
        # puts what was saved back into client c; returns how many messages
        snap = self.read()
        if not snap:
            return 0
        c.restore(*snap)
        return len(snap[1])

    def read(self):
        return None  # the snapshot saved last, (last_pid, records, held); None: none

    def save(self, snap):
        raise NotImplementedError

    def add(self, c, rec):
        self.save(c.snapshot())

    def state(self, c, pid, st):
        self.save(c.snapshot())

    def remove(self, c, pid, durable=True):
        self.save(c.snapshot())

    def flush(self):
        pass

    def hold(self, c, pid):
        self.save(c.snapshot())

    def release(self, c, pid):
        self.save(c.snapshot())


class FileStore(Store):
    """The journal in a file: a record per change, compacted now and then."""

    COMPACT_MIN = 4096  # never compacted while this small
    COMPACT_RATIO = 3  # compacted once more than this many times the live state

    def __init__(self, path):
        self.path = path
        self._f = None  # the journal, open to append; None: the next change compacts
        self._ok = False  # True: the file is a clean journal of _size bytes, to append to
        self._size = 0  # bytes in the journal
        self._next = 0  # its size at which to look at the live state's
        self._buf = bytearray(512)  # where records are made: no allocation for most
        self._mv = memoryview(self._buf)

    def read(self):
        # the journal, or the .tmp when it is all there is (a cut between the remove and
        # the rename of a compaction on FAT)
        self.close()
        self._ok = False
        for p in (self.path, self.path + ".tmp"):
            try:
                f = open(p, "rb")
            except OSError:
                continue
            try:
                snap, clean, magic, end = parse(f)
            finally:
                f.close()
            # a torn tail, a .tmp or a file with another check: the next change compacts
            self._ok = clean and p == self.path and magic == _MAGIC
            self._size = end
            self._next = max(self.COMPACT_RATIO * _size(snap) + 1, self.COMPACT_MIN) if snap else 0
            return snap
        return None

    def save(self, snap):
        # compaction: the live state to path.tmp, then that over the journal
        self.close()
        self._ok = False
        path = self.path
        tmp = path + ".tmp"
        if not _exists(path) and _exists(tmp):  # the .tmp is the only copy: keep it
            os.rename(tmp, path)
        f = open(tmp, "wb")
        try:
            n = dump(f, snap, self._buf)
            f.flush()
        finally:
            f.close()
        try:
            os.rename(tmp, path)
        except OSError:  # FAT renames over no file: a cut now leaves the .tmp, complete
            os.remove(path)
            os.rename(tmp, path)
        self._size = n
        self._next = max(self.COMPACT_RATIO * n + 1, self.COMPACT_MIN)
        self._ok = True

    def close(self):
        f = self._f
        self._f = None
        if f:
            try:
                f.close()
            except OSError:
                pass

    def _append(self, c, kind, pid, rec=None, durable=True):
        # One record, in one write(), flushed (durable) or left to the next flush: the
        # journal keeps its order, so a record flushed makes all before it durable too.
        # Compacts first when it is time, so that
        # whether or not c.snapshot() has this change yet, the journal ends up right.
        try:
            if self._size >= self._next or not self._ok:
                snap = c.snapshot()
                n = _size(snap)
                if not self._ok or self._size > self.COMPACT_RATIO * n:
                    self.save(snap)
                else:  # grew by adding: look again after some more growth
                    self._next = max(self.COMPACT_RATIO * n + 1, self._size + n // 2, self.COMPACT_MIN)
            f = self._f
            if not f:
                f = self._f = open(self.path, "ab")
            b, mv = self._buf, self._mv
            if rec:
                n = _msg_size(rec)
                if n > len(b):
                    b = bytearray(n)
                    mv = memoryview(b)
                n = _put_msg(b, mv, 0, rec, _check)
            else:
                n = _put_small(b, mv, 0, kind, pid, _check)
            _write(f, mv[:n])
            if durable:
                f.flush()
            self._size += n
        except BaseException:  # the file may end in part of a record: start anew
            self.close()
            self._ok = False
            raise

    def add(self, c, rec):
        self._append(c, _ADD, rec[4], rec)

    def state(self, c, pid, st):
        self._append(c, _STATE | st, pid)

    def remove(self, c, pid, durable=True):
        # durable=False (robust2, for an acknowledged QoS 1 message): left to the next
        # flush; a cut before it sends the message once more (a QoS 1 duplicate)
        self._append(c, _DONE, pid, None, durable)

    def flush(self):
        """Makes every record written so far durable."""
        if self._f:
            self._f.flush()

    def hold(self, c, pid):
        self._append(c, _HOLD, pid)

    def release(self, c, pid):
        self._append(c, _RELEASE, pid)
