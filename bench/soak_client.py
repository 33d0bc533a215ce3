# The soak's publisher (bench/soak.py runs it under the MicroPython unix port): a
# robust2 client that publishes numbered QoS 1 and QoS 2 messages through a faulty link,
# as fast as its queue lets it, and keeps running until every one is acknowledged.
import os
import sys

from umqtt import errno
from umqtt.robust2 import MQTTClient

try:
    from time import ticks_ms, ticks_diff, sleep_ms
except ImportError:
    import time
    from umqtt._cpython import ticks_ms, ticks_diff

    def sleep_ms(ms):
        time.sleep(ms / 1000)


N1 = int(os.getenv("SOAK_QOS1"))
N2 = int(os.getenv("SOAK_QOS2"))
RATE = int(os.getenv("SOAK_RATE"))  # messages a second
LIMIT = int(os.getenv("SOAK_SECONDS")) * 1000
counts = {"delivered": 0, "dropped": 0, "unknown": 0, "reconnects": 0}


def status(pid, st):
    if st == errno.SDELIVERED:
        counts["delivered"] += 1
    elif st == errno.SDROPPED:
        counts["dropped"] += 1
    elif st == errno.SUNKNOWNPID:
        counts["unknown"] += 1


c = MQTTClient("soak-pub", "127.0.0.1", int(os.getenv("SOAK_PORT")), keepalive=2, socket_timeout=2,
               message_timeout=5)
c.MSG_QUEUE_MAX = 2000
c.MSG_QUEUE_BYTES = 100000
c.DELAY_MIN = 50
c.DELAY_MAX = 1000
c.set_callback_status(status)
c.connect(clean_session=False)
sent = [0, 0]  # QoS 1, QoS 2
longest = [0, ""]  # the longest single call of the loop (ms), and which


def timed(what, f, *args):
    t = ticks_ms()
    r = f(*args)
    t = ticks_diff(ticks_ms(), t)
    if t > longest[0]:
        longest[0] = t
        longest[1] = what
    return r


t0 = ticks_ms()
while ticks_diff(ticks_ms(), t0) < LIMIT:
    if c.is_conn_issue():
        if timed("reconnect()", c.reconnect) is not None:
            counts["reconnects"] += 1
    due = ticks_diff(ticks_ms(), t0) * RATE // 1000
    # publish what is due, unless the queue is nearly full (the application's backpressure)
    while sent[0] + sent[1] < min(due, N1 + N2) and len(c.msg_to_send) < c.MSG_QUEUE_MAX - 1:
        # QoS 2 messages spread evenly among the QoS 1 ones
        q = 2 if sent[1] * (N1 + N2) < N2 * (sent[0] + sent[1] + 1) and sent[1] < N2 else 1
        if q == 1 and sent[0] >= N1:
            q = 2
        timed("publish()", c.publish, "soak/q%d" % q, b"%d" % sent[q - 1], False, q)
        sent[q - 1] += 1
    timed("check_msg()", c.check_msg)
    if sent[0] + sent[1] == N1 + N2 and not c.things_to_do():
        break
    sleep_ms(1)
print("published qos1=%d qos2=%d delivered=%d dropped=%d unknown=%d reconnects=%d left=%d ms=%d longest=%d (%s)"
      % (sent[0], sent[1], counts["delivered"], counts["dropped"], counts["unknown"], counts["reconnects"],
         c.things_to_do(), ticks_diff(ticks_ms(), t0), longest[0], longest[1]))
c.disconnect()
sys.exit(0 if not c.things_to_do() else 1)
