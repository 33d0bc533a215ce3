# The heap probes of bench/bench.py, compiled to .mpy and run as
# `micropython -X heapsize=NNk -m heap_client` with the client's .mpy files on
# MICROPYPATH. A small script, so that little of the heap (and of the qstr pool) is the
# script's own:
#   BENCH_HEAP=1: the heap in use after importing the client, MQTTClient(...) and
#     connect(), above the same before the import; and the modules loaded.
#   otherwise: connect, subscribe, publish QoS 1 to the subscribed topic and receive it
#     back (and its PUBACK); prints OK when all went (bench.py bisects the heap size).
import gc
import os
import sys
from time import ticks_ms, ticks_diff

K = os.getenv("BENCH_KIND")
CID = os.getenv("BENCH_CID")
PORT = int(os.getenv("BENCH_PORT"))
T = os.getenv("BENCH_TOPIC").encode()
got = []


def cb(topic, msg, *flags):
    got.append(msg)


gc.collect()
a = gc.mem_alloc()
if K == "simple":
    from umqtt.simple import MQTTClient
elif K == "simple2":
    from umqtt.simple2 import MQTTClient
else:
    from umqtt.robust2 import MQTTClient
c = MQTTClient(CID, "127.0.0.1", PORT)
if os.getenv("BENCH_HEAP"):
    c.connect()
    gc.collect()
    print("HEAP", gc.mem_alloc() - a)
    for m in sys.modules:
        if m == "umqtt" or m.startswith("umqtt."):
            print("MODULE", m, getattr(sys.modules[m], "__file__", ""))
    if getattr(c, "conn_issue", None):
        raise OSError("connect failed")
    c.disconnect()
    sys.exit(0)
c.set_callback(cb)
c.connect()
c.subscribe(T, 1)
c.publish(T, b"hello", qos=1)
t0 = ticks_ms()
while not got or getattr(c, "rcv_pids", None):
    c.check_msg()
    if getattr(c, "conn_issue", None) or ticks_diff(ticks_ms(), t0) > 5000:
        raise OSError("failed")
c.disconnect()
if got == [b"hello"]:
    print("OK")
