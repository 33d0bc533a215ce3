# Helpers for tests/test_store.py's scripts (MicroPython and CPython alike): a client
# with no network that keeps the state robust2 gives a store (its model), random event
# sequences, and files and an os that fail or "lose power" where a test says.
import builtins
import os

from umqtt import store as S

from checks import check, checks, eq, short  # noqa: F401  (counted: one copy for every tier)


def done():
    print("OK %d checks" % checks())


def rm(*paths):
    for p in paths:
        try:
            os.remove(p)
        except OSError:
            pass


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def size(path):
    return os.stat(path)[6]


class Rand:
    # the same sequence on both interpreters
    def __init__(self, seed):
        self.x = seed

    def __call__(self, n):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) % n


class Client:
    """What robust2 keeps for its store: last pid drawn, messages in send order, held
    QoS 2 pids. Its events update that, then tell the store, which fails as robust2's
    does: OSError and MemoryError are logged (counted here) and the client goes on.
    before=True tells the store first: a store must be right either way."""

    def __init__(self, store=None, before=False):
        self.last = 0
        self.recs = []
        self.held = []
        self.store = store
        self.before = before
        self.errors = []

    def snapshot(self):
        return (self.last, self.recs, self.held)

    def restore(self, last, recs, held):
        self.last, self.recs, self.held = last, recs, held

    def _tell(self, name, *args):
        try:
            getattr(self.store, name)(self, *args)
        except (OSError, MemoryError) as e:
            self.errors.append(e)

    def _do(self, change, name, *args):
        if self.before:
            self._tell(name, *args)
            change()
        else:
            change()
            self._tell(name, *args)

    def find(self, pid):
        for r in self.recs:
            if r[4] == pid:
                return r

    def add(self, topic, msg, retain=False, qos=1, state=0):
        p = self.last
        while True:
            p = p % 65535 + 1
            if not self.find(p):
                break
        rec = [topic, msg, retain, qos, p, state]

        def change():
            self.last = p
            self.recs.append(rec)

        self._do(change, "add", rec)
        return p

    def state(self, pid, st):
        def change():
            self.find(pid)[5] = st

        self._do(change, "state", pid, st)

    def remove(self, pid):
        def change():
            self.recs.remove(self.find(pid))

        self._do(change, "remove", pid)

    def hold(self, pid):
        def change():
            self.held.append(pid)

        self._do(change, "hold", pid)

    def release(self, pid):
        def change():
            self.held.remove(pid)

        self._do(change, "release", pid)

    def copy(self):
        # the state as it is now, not shared with what the events change later
        return (self.last, [list(r) for r in self.recs], list(self.held))


def loaded(path, store=None):
    """A fresh client with what a fresh FileStore on path loads, and the count."""
    c = Client()
    c.store = store or S.FileStore(path)
    n = c.store.load(c)
    eq(n, len(c.recs), "load() returns how many messages it restored")
    return c


def random_event(c, rnd, big=False):
    """One event of the kinds robust2 has, picked at random, on client c."""
    k = rnd(10)
    if k < 4 or not c.recs:
        tl = (1, 20, 20, 127, 128, 200)[rnd(6)]
        ml = (0, 1, 32, 32, 127, 128, 300, 20000 if big else 40)[rnd(8)]
        topic = (b"t%d/" % rnd(1000) + b"abcdefghij" * 21)[:tl]
        msg = bytes((rnd(256),)) * ml
        qos = 1 + rnd(2)
        c.add(topic, msg, rnd(2) == 1, qos, rnd(2))
    elif k < 6:
        r = c.recs[rnd(len(c.recs))]
        c.state(r[4], (1, 1, 2)[rnd(3)] if r[3] == 2 else 1)
    elif k < 8:
        c.remove(c.recs[rnd(len(c.recs)) if rnd(3) == 0 else 0][4])
    elif k < 9 or not c.held:
        p = 1 + rnd(65535)
        if p not in c.held:
            c.hold(p)
    else:
        c.release(c.held[rnd(len(c.held))])


class Cut(Exception):
    """Power lost: what is on disk stays as it is; the program is gone."""


class Disk:
    """open() and os for umqtt.store (install() puts them in), counting what is written,
    and failing where told: the fail-th write() writes half its bytes, then raises exc
    (OSError: the write failed; Cut: power lost there). Its os calls (stat, rename,
    remove) are counted: at the cut_at-th power is lost; the os_fail-th raises OSError.
    fat: rename() refuses to replace a file, as on FAT."""

    def __init__(self, fat=False):
        self.fat = fat
        self.writes = self.bytes = self.opens = self.flushes = self.calls = 0
        self.fail = self.exc = self.cut_at = self.os_fail = None
        self.sep = "/"

    def install(self):
        S.open = self.open
        S.os = self

    @staticmethod
    def uninstall():
        S.open = builtins.open
        S.os = os

    def open(self, path, mode="r"):
        self.opens += 1
        return _File(builtins.open(path, mode), self)

    def _call(self):
        self.calls += 1
        if self.calls == self.cut_at:
            raise Cut()
        if self.calls == self.os_fail:
            raise OSError(5)

    def stat(self, path):
        self._call()
        return os.stat(path)

    def remove(self, path):
        self._call()
        os.remove(path)

    def rename(self, a, b):
        self._call()
        if self.fat and exists(b):
            raise OSError(17)
        os.rename(a, b)


class _File:
    def __init__(self, f, disk):
        self.f = f
        self.d = disk

    def write(self, b):
        d = self.d
        d.writes += 1
        if d.writes == d.fail:
            d.fail = None
            h = len(b) // 2
            self.f.write(b[:h])
            self.f.flush()
            d.bytes += h
            raise d.exc
        n = self.f.write(b)
        d.bytes += n
        return n

    def flush(self):
        self.d.flushes += 1
        self.f.flush()

    def read(self, n=-1):
        return self.f.read(n)

    def close(self):
        self.f.close()
