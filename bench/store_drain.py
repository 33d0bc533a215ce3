"""How fast robust2 drains a backlog with and without umqtt.store: N QoS 1 messages are
published while offline (queued; with the store each is journalled), then the client
connects and runs send_queue() + check_msg() until every one is acknowledged. Prints
the drain time in ms. Run under the MicroPython unix port (or CPython) against a broker
on this machine:

    MICROPYPATH=. micropython bench/store_drain.py PORT N store|none

(bench/store_drain.py's numbers in README come from runs of both, alternated.)"""
import os
import sys

from umqtt.robust2 import MQTTClient

try:
    from time import ticks_ms, ticks_diff
except ImportError:
    from umqtt._cpython import ticks_ms, ticks_diff

PORT, N, MODE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
PATH = "drain-bench.dat"
c = MQTTClient("drain-%s" % MODE, "127.0.0.1", PORT, keepalive=30)
c.MSG_QUEUE_BYTES = 1 << 30
if MODE == "store":
    from umqtt.store import FileStore

    for p in (PATH, PATH + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass
    c.store = FileStore(PATH)
for i in range(N):  # offline: each is queued (and journalled)
    c.publish("drain/%s" % MODE, b"reading %06d" % i, qos=1)
assert len(c.msg_to_send) == N
t = ticks_ms()
c.connect(clean_session=True)
while c.things_to_do():
    c.send_queue()
    c.check_msg()
ms = ticks_diff(ticks_ms(), t)
c.disconnect()
if MODE == "store":
    c.store.close()
    os.remove(PATH)
print("drained", N, "in", ms, "ms")
