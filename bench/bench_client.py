# The client side of bench/bench.py: one measurement, under the MicroPython unix port,
# of one client library. bench.py runs it once per (client, figure, run), each in its own
# process with MICROPYPATH set to that library's folder of .mpy files, so that our
# umqtt package and a peer's never meet. Parameters come from the environment
# (BENCH_*); results go to stdout as "RESULT name value" lines, then "DONE".
#
# BENCH_KIND selects the API: "simple" (micropython-umqtt.simple 1.3.4: callback
# f(topic, msg), QoS 1 publish() waits for its PUBACK), "simple2" or "robust2" (fizista's
# 2.2.0 and ours: callback f(topic, msg, retained, dup), status callback f(pid, status),
# publish() returns at once).
import gc
import os
import sys
from time import ticks_us, ticks_ms, ticks_diff, sleep_ms

KIND = os.getenv("BENCH_KIND")
TEST = os.getenv("BENCH_TEST")
HOST = "127.0.0.1"
PORT = int(os.getenv("BENCH_PORT"))
CID = os.getenv("BENCH_CID")
TOPIC = os.getenv("BENCH_TOPIC").encode()
MSG = b"x" * int(os.getenv("BENCH_PAYLOAD") or 32)  # the same payload for every message
N = int(os.getenv("BENCH_N") or 1000)  # messages timed (at most)
K = int(os.getenv("BENCH_K") or 1000)  # operations measured for heap allocation
T = int(os.getenv("BENCH_MS") or 2000)  # time cap of the timed part, ms
W = int(os.getenv("BENCH_WINDOW") or 0)  # QoS 1 messages in flight when pipelining

got = 0  # messages received
acks = 0  # status SDELIVERED reports


def cb2(topic, msg):
    global got
    got += 1


def cb4(topic, msg, retained, dup):
    global got
    got += 1


def status(pid, st):
    global acks
    if st == 1:
        acks += 1


def result(name, value):
    print("RESULT", name, value)


def load():
    if KIND == "simple":
        from umqtt.simple import MQTTClient
    elif KIND == "simple2":
        from umqtt.simple2 import MQTTClient
    else:
        from umqtt.robust2 import MQTTClient
    return MQTTClient


def client(clean=True):
    c = load()(CID, HOST, PORT)
    if KIND == "simple":
        c.set_callback(cb2)
    else:
        c.set_callback(cb4)
        c.set_callback_status(status)
    c.connect(clean)
    if KIND == "robust2" and c.conn_issue:  # robust2 reports instead of raising
        raise OSError("connect failed: %r" % (c.conn_issue,))
    return c


def inflight(c):
    # QoS >= 1 messages not yet acknowledged
    if KIND == "robust2":
        return c.things_to_do()
    return len(c.rcv_pids)


def alloc(f, c, k):
    # heap bytes allocated by k calls of f(c), less the loop's own; gc off meanwhile
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for i in range(k):
        pass
    b = gc.mem_alloc()
    for i in range(k):
        f(c)
    e = gc.mem_alloc()
    gc.enable()
    return (e - b - (b - a)) / k


def issue(c):
    # robust2 keeps connection failures in conn_issue instead of raising: a failure
    # must not pass for a fast run
    if KIND == "robust2" and c.conn_issue:
        raise OSError("connection issue: %r" % (c.conn_issue,))


def pub0(c):
    c.publish(TOPIC, MSG)


def check(c):
    c.check_msg()


def t_qos0(c):
    # QoS 0 publish rate, then heap per publish
    t0 = ticks_us()
    tcap = ticks_ms()
    n = 0
    while n < N:
        for i in range(100):
            c.publish(TOPIC, MSG)
        n += 100
        if ticks_diff(ticks_ms(), tcap) > T:
            break
    dt = ticks_diff(ticks_us(), t0)
    issue(c)
    result("sent", n)
    result("rate", n * 1000000 / dt)
    result("alloc", alloc(pub0, c, K))
    result("sent", n + K)
    issue(c)


def wait_acked(c, ms=10000):
    t = ticks_ms()
    while inflight(c):
        c.check_msg()
        issue(c)
        if ticks_diff(ticks_ms(), t) > ms:
            raise OSError("no PUBACK in %d ms" % ms)


def t_qos1(c):
    # QoS 1, waiting for each PUBACK before the next publish
    t0 = ticks_ms()
    n = 0
    while n < N and ticks_diff(ticks_ms(), t0) < T:
        c.publish(TOPIC, MSG, qos=1)  # simple 1.3.4: returns once PUBACK has come
        n += 1
        if KIND != "simple":
            wait_acked(c)
    dt = ticks_diff(ticks_ms(), t0)
    issue(c)
    result("sent", n)
    result("rate", n * 1000 / dt)
    # umqtt.simple's publish() returned only once its PUBACK had come
    result("acked", n if KIND == "simple" else acks)


def room(c):
    # may the application publish one more QoS 1 message now? W > 0: while fewer than W
    # are unacknowledged. W = 0: always, unless the client would drop one (robust2's
    # queue is full)
    if W:
        return inflight(c) < W
    if KIND == "robust2" and hasattr(c, "inflight"):  # ours: a window, then a queue
        q, most = c.msg_to_send, c.MSG_QUEUE_MAX  # bounded by its heap (and a count if set)
        return (most is None or len(q) < most) and q.bytes + 256 <= (c.MSG_QUEUE_BYTES or q.budget)
    return True


def t_pipe(c):
    # QoS 1 pipelined: publish without waiting for PUBACKs, check_msg() only when there
    # is no room for another message (see room()), then until all are acknowledged
    t0 = ticks_us()
    n = 0
    tcap = ticks_ms()
    while n < N:
        if room(c):
            c.publish(TOPIC, MSG, qos=1)
            n += 1
        else:
            c.check_msg()
            if ticks_diff(ticks_ms(), tcap) > T:
                break
    wait_acked(c)
    dt = ticks_diff(ticks_us(), t0)
    issue(c)
    result("sent", n)
    result("acked", acks)
    result("rate", n * 1000000 / dt)


def t_recv(c):
    # a backlog of N + K QoS 0 messages waits in the broker for this session: receive
    # N timed, then K more for the heap per message
    t0 = ticks_us()
    tcap = ticks_ms()
    i = 0
    while got < N:
        c.check_msg()
        i += 1
        if not i & 255 and ticks_diff(ticks_ms(), tcap) > T:
            break
    dt = ticks_diff(ticks_us(), t0)
    issue(c)
    n = got
    result("received", n)
    result("rate", n * 1000000 / dt)
    sleep_ms(150)  # the rest of the backlog into the socket: no idle call below
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    calls = 0
    while got < n + K and calls < 3 * K:
        c.check_msg()
        calls += 1
    e = gc.mem_alloc()
    gc.enable()
    issue(c)
    result("alloc", (e - a) / (got - n) if got > n else -1)
    result("alloc_calls", calls)
    result("received", got)


def t_idle(c):
    # check_msg() with nothing to receive: time per call, heap per call
    sleep_ms(100)  # nothing in flight (SUBACK in)
    while c.check_msg() is not None:
        pass
    t0 = ticks_us()
    n = 0
    while True:
        for i in range(100):
            c.check_msg()
        n += 100
        dt = ticks_diff(ticks_us(), t0)
        if dt > T * 1000 or n >= N:
            break
    issue(c)
    result("calls", n)
    result("us", dt / n)
    result("alloc", alloc(check, c, K))
    issue(c)


def main():
    c = client(TEST != "recv")
    if TEST == "idle":
        c.subscribe(TOPIC + b"/idle", 0)
    {"qos0": t_qos0, "qos1": t_qos1, "pipe": t_pipe, "recv": t_recv, "idle": t_idle}[TEST](c)
    c.disconnect()


main()
print("DONE")
