"""robust2's defaults keep what README promises, counted by an independent subscriber
(mosquitto_sub, a separate process with a persistent session): a sensor's QoS 1
readings survive a broker outage with nothing lost, dropped or reordered. MicroPython
runs the compiled .mpy files on a heap the size of an ESP32's free heap."""
import os
import subprocess
import threading
import time

import pytest

from conftest import INTERPRETERS, REPO, Runner


def compiled(tmp_path):
    out = tmp_path / "mpy"
    subprocess.run(["bash", os.path.join(REPO, "compile.sh"), "-o", str(out)], check=True,
                   capture_output=True)
    return str(out)


class Subscriber:
    """mosquitto_sub with a persistent session (it reconnects by itself when its broker
    comes back), collecting each payload it prints."""

    def __init__(self, broker, topic, cid):
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", topic, "-q", "1",
             "-c", "-i", cid, "-F", "%p"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.out = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.out.append(line.strip())

    def wait(self, n, seconds):
        deadline = time.time() + seconds
        while len(set(self.out)) < n and time.time() < deadline:
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def readings_check(sub, n):
    # every reading came, in order; a QoS 1 duplicate (a lost PUBACK) may come twice
    first = []
    for m in sub.out:
        if m not in first:
            first.append(m)
    assert first == ["r%d" % i for i in range(n)], "lost or reordered: got %d of %d, %s..." % (
        len(first), n, first[:5])


SENSOR = """
from umqtt.robust2 import MQTTClient as R
c = client(env("CID"), cls=R)
st = Status()
c.set_callback_status(st)
check(c.connect(clean_session=False) is not None)
EVERY, OUTAGE_AT, OUTAGE, TOTAL = (int(env(k)) for k in ("EVERY", "OUTAGE_AT", "OUTAGE", "TOTAL"))
t0 = ticks_ms()
n = 0
stopped = started = False
while n < TOTAL:
    now = ticks_diff(ticks_ms(), t0)
    if not stopped and now >= OUTAGE_AT:
        ask("stop")
        stopped = True
    if stopped and not started and now >= OUTAGE_AT + OUTAGE:
        ask("start")
        started = True
    if now >= n * EVERY:
        c.publish(env("TOPIC"), b"r%d" % n, qos=1)
        n += 1
    if c.is_conn_issue():
        c.reconnect()
    c.check_msg()
    sleep_ms(10)
t1 = ticks_ms()
while c.things_to_do():  # the peer's loop, without new readings
    if c.is_conn_issue():
        c.reconnect()
    c.check_msg()
    sleep_ms(10)
    check(ticks_diff(ticks_ms(), t1) < 90000, "every reading acknowledged", c.things_to_do(), c.conn_issue)
print("after the last reading, acknowledged within", ticks_diff(ticks_ms(), t1), "ms")
eq([x for x in st.log if x[1] != errno.SDELIVERED], [], "nothing dropped")
eq(len(st.log), TOTAL)
print("published", n)
c.disconnect()
"""


def outage(request, tmp_path, broker, every, outage_ms, total, mp_args=()):
    """Both interpreters at once, each its own sensor and subscriber, one broker: each
    asks for the broker to stop 3 s after it started and to start outage_ms later (the
    second ask of each is a no-op), so that the two runs take the time of one."""
    broker.start()
    lock = threading.Lock()

    def stop():
        with lock:
            broker.stop()

    def start():
        with lock:
            if broker.proc is None:
                broker.start()

    subs, outs, errors = {}, {}, []

    def one(interp):
        try:
            topic = "defaults/%s/%d" % (interp, every)
            r = Runner(interp, tmp_path / interp, request)
            path = compiled(tmp_path / interp) if interp == "micropython" else REPO
            outs[interp] = r(SENSOR, broker=broker, timeout=total * every / 1000 + 120, path=path,
                             mp_args=mp_args, actions={"stop": stop, "start": start},
                             env={"CID": "sensor-%s-%d" % (interp, every), "TOPIC": topic,
                                  "EVERY": str(every), "OUTAGE_AT": "3000", "OUTAGE": str(outage_ms),
                                  "TOTAL": str(total)})
        except BaseException as e:  # (pytest.fail raises BaseException)
            errors.append((interp, e))

    try:
        for interp in INTERPRETERS:
            (tmp_path / interp).mkdir()
            subs[interp] = Subscriber(broker, "defaults/%s/%d" % (interp, every), "sub-%s-%d" % (interp, every))
        time.sleep(0.5)  # (their SUBSCRIBEs in before the first reading: checked below)
        runs = [threading.Thread(target=one, args=(i,)) for i in INTERPRETERS]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        assert not errors, errors
        for interp in INTERPRETERS:
            subs[interp].wait(total, 15)
    finally:
        for sub in subs.values():
            sub.stop()
    for interp in INTERPRETERS:
        readings_check(subs[interp], total)
    return outs


def test_100_ms_readings_through_a_6_s_outage_on_an_esp32_heap(request, tmp_path, own_mosquitto):
    # one 32-byte-ish QoS 1 reading every 100 ms, 15 s, the broker down from 3 s to 9 s:
    # the default queue (a share of a 128 KiB heap on MicroPython) holds what the outage
    # and the reconnect delay after it keep back
    outage(request, tmp_path, own_mosquitto, every=100, outage_ms=6000, total=150,
           mp_args=("-X", "heapsize=128k"))


def test_1_s_readings_through_a_60_s_outage(request, tmp_path, own_mosquitto):
    outage(request, tmp_path, own_mosquitto, every=1000, outage_ms=60000, total=75)


FILL = """
from umqtt.robust2 import MQTTClient as R
c = client("fill", cls=R, port=1)  # nothing listens: every message is queued
drops = [0]

def status(pid, s):  # (allocates nothing: the heap is full when it is called)
    if s == errno.SDROPPED:
        drops[0] += 1

c.set_callback_status(status)
if MICROPYTHON:  # no budget: the heap itself runs out
    c.MSG_QUEUE_BYTES = 1 << 30
payload = bytearray(128)  # (a bytearray: each message keeps a copy of it)
n = 0
while n < 100000 and not drops[0]:
    c.publish("fill/t", payload, qos=1)  # never raises MemoryError
    n += 1
check(drops[0], "a message was dropped")
kept = len(c.msg_to_send)
for i in range(20):  # and it goes on: each new one dropped or kept, never raised
    c.publish("fill/t", payload, qos=1)
print("queued", kept, "of", n, "before the first drop;", drops[0], "dropped")
check(kept > 100, kept)
"""


@pytest.mark.parametrize("interp", ["micropython", "cpython"])
def test_filling_the_heap_offline_drops_never_raises(request, tmp_path, interp):
    # MicroPython: a 96 KiB heap and no byte bound, until the heap cannot hold another
    # message; CPython: the default bound
    r = Runner(interp, tmp_path, request)
    path = compiled(tmp_path) if interp == "micropython" else REPO
    out = r(FILL, path=path, mp_args=("-X", "heapsize=96k"), timeout=120)
    assert "before the first drop" in out
