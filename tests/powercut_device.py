# The "device" of tests/test_powercut.py, run under MicroPython and CPython and killed
# with SIGKILL at random moments. Each start: load the store (print what load() gave),
# connect with clean_session=False, then publish numbered readings (QoS 1 + i % 2) in
# the peer's loop, recording after each publish() the number handed to it, so that the
# next start goes on from the one after. With PC_DRAIN set: publish nothing, run until
# things_to_do() == 0, disconnect, exit.
import os
import sys

from mqttcase import env, name, sleep_ms, ticks_ms, ticks_diff
from umqtt import store
from umqtt.robust2 import MQTTClient
from umqtt.store import FileStore

TOPIC = name("pc/readings")
LAST = "last"  # the last reading handed to publish(), rewritten with os.rename
CHUNK = int(env("PC_CHUNK", "0"))  # >0: the flash writes this many bytes at a time ...
CHUNK_MS = int(env("PC_CHUNK_MS", "0"))  # ... taking this long for each after the first
DRAIN = env("PC_DRAIN")


def out(*what):
    print(*what)
    if not hasattr(sys.stdout, "buffer"):  # (MicroPython: written at once)
        return
    sys.stdout.flush()


class SlowFlash:
    # A store file on slow flash: a write() goes out CHUNK bytes at a time, each
    # flushed to the OS, with CHUNK_MS between two; a cut in between leaves a torn
    # record, or a torn .tmp of a compaction
    def __init__(self, f):
        self.f = f

    def write(self, b):
        n = len(b)
        for i in range(0, n, CHUNK):
            if i:
                sleep_ms(CHUNK_MS)
            self.f.write(b[i : i + CHUNK])
            self.f.flush()
        return n

    def flush(self):
        self.f.flush()

    def close(self):
        self.f.close()


if CHUNK:
    _open = open

    def _slow_open(path, mode="r"):
        f = _open(path, mode)
        return SlowFlash(f) if "b" in mode and ("w" in mode or "a" in mode) else f

    store.open = _slow_open  # what umqtt.store calls open() (a global before the builtin)


class Store(FileStore):
    COMPACT_MIN = int(env("PC_COMPACT_MIN", str(FileStore.COMPACT_MIN)))
    COMPACT_RATIO = int(env("PC_COMPACT_RATIO", str(FileStore.COMPACT_RATIO)))

    def save(self, snap):
        out("COMPACT start", len(snap[1]))
        FileStore.save(self, snap)
        out("COMPACT end")


def last_recorded():
    try:
        with open(LAST) as f:
            return int(f.read())
    except OSError:
        return -1


def record(i):
    with open(LAST + ".tmp", "w") as f:
        f.write(str(i))
    os.rename(LAST + ".tmp", LAST)


c = MQTTClient(name("pc-device"), "127.0.0.1", port=int(env("MQTT_PORT")), socket_timeout=1, keepalive=10)
c.DELAY_MIN = 20
c.DELAY_MAX = 200
c.MSG_QUEUE_MAX = 1000
c.store = Store("store.dat")
try:
    n = c.store.load(c)
except Exception as e:
    out("LOAD FAILED", repr(e))
    raise
i = last_recorded() + 1
out("LOAD %d inflight=%d queued=%d held=%d last_pid=%d next=%d"
    % (n, len(c.inflight), len(c.msg_to_send), len(c._qos2_in), c._lastpid, i))
c.connect(clean_session=False)
out("CONNECT", c.session_present if not c.is_conn_issue() else repr(c.conn_issue))
if DRAIN:
    t0 = ticks_ms()
    while c.things_to_do() or not c.is_connected():
        if c.is_conn_issue():
            c.reconnect()
        c.check_msg()
        c.send_queue()
        sleep_ms(2)
        if ticks_diff(ticks_ms(), t0) > 60000:
            out("DRAIN TIMEOUT", c.things_to_do(), c.conn_issue)
            sys.exit(2)
    c.disconnect()
    out("DRAINED")
    sys.exit(0)
while True:
    if c.is_conn_issue():
        c.reconnect()
    if c.things_to_do() < 25:  # the application's backpressure
        c.publish(TOPIC, b"%d" % i, qos=1 + i % 2)
        record(i)  # handed to publish(): from now on the library's to deliver
        i += 1
    c.check_msg()
    c.send_queue()
    sleep_ms(3)
