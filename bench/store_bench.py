"""umqtt.store's cost per message, on the MicroPython unix port (or CPython): a queue held
at LIVE messages; each message is kept (add), sent (state 1) and acknowledged (remove,
of the oldest), 3 events, with a 20-byte topic and a 32-byte payload.

    micropython bench/store_bench.py bytes LIVE N   # bytes written to files per message
    micropython bench/store_bench.py time LIVE N    # microseconds per event
    micropython bench/store_bench.py run LIVE N     # just the events (for instruction
                                                    # counts: run with N and 2N, subtract)
Run from the repository's top (MICROPYPATH=. for MicroPython). Writes st-bench.dat in
the current folder and removes it at the end."""
import os
import sys

from umqtt import store as S

try:
    from time import ticks_us, ticks_diff
except ImportError:
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(a, b):
        return a - b

TOPIC = b"sensors/room-12/temp"  # 20 bytes
MSG = b"x" * 32
PATH = "st-bench.dat"


class Client:
    def __init__(self):
        self.last = 0
        self.recs = []
        self.held = []

    def snapshot(self):
        return (self.last, self.recs, self.held)


class Counted:
    # a file that counts the bytes written through it
    total = [0]
    biggest = [0]

    def __init__(self, path, mode):
        self.f = open(path, mode)

    def write(self, b):
        n = self.f.write(b)
        self.total[0] += n
        return n

    def flush(self):
        self.f.flush()

    def close(self):
        self.f.close()


def message(c, st):
    # one message through its three events; the queue stays at its length
    p = c.last % 65535 + 1
    rec = [TOPIC, MSG, False, 1, p, 0]
    c.last = p
    c.recs.append(rec)
    st.add(c, rec)
    rec[5] = 1
    st.state(c, p, 1)
    old = c.recs.pop(0)
    st.remove(c, old[4])


def main():
    mode, live, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for p in (PATH, PATH + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass
    if mode == "bytes":
        S.open = Counted
    c = Client()
    st = S.FileStore(PATH)
    if os.getenv("RATIO"):  # another bound, to compare
        st.COMPACT_RATIO = int(os.getenv("RATIO"))
    for i in range(live):  # the queue filled: not counted
        p = i + 1
        rec = [TOPIC, MSG, False, 1, p, 1]
        c.last = p
        c.recs.append(rec)
        st.add(c, rec)
    Counted.total[0] = 0
    biggest = 0
    t = ticks_us()
    for i in range(n):
        message(c, st)
        if mode == "bytes":
            biggest = max(biggest, os.stat(PATH)[6])
    t = ticks_diff(ticks_us(), t)
    if mode == "bytes":
        live_bytes = S._size(c.snapshot())
        print("bytes/message %.1f  (live state %d bytes, journal at most %d bytes, %.2fx)"
              % (Counted.total[0] / n, live_bytes, biggest, biggest / live_bytes))
    elif mode == "time":
        print("us/event %.2f" % (t / n / 3))
    for p in (PATH, PATH + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass


main()
