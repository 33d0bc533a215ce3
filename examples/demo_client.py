# The demo's device side, run by examples/demo.py under the MicroPython unix port:
# a robust2 client publishes numbered QoS 1 readings and receives them back through
# the broker, while the demo stops and restarts the broker underneath it.
import os
import sys
import time

from umqtt import errno
from umqtt.robust2 import MQTTClient

try:
    from time import ticks_ms, ticks_diff, sleep_ms
except ImportError:  # CPython
    from umqtt._cpython import ticks_ms, ticks_diff

    def sleep_ms(ms):
        time.sleep(ms / 1000)


N = int(os.getenv("DEMO_MESSAGES") or 60)
TOPIC = "demo/readings"
got = []
delivered = []
pids = []


def on_message(topic, msg, retained, dup):
    got.append(int(msg))


def on_status(pid, status):
    if status == errno.SDELIVERED:
        delivered.append(pid)


def say(*what):
    print("client:", *what)


c = MQTTClient("demo-device", "127.0.0.1", int(os.getenv("DEMO_PORT")), keepalive=2, socket_timeout=1)
c.DELAY_MIN = 100  # retry fast: this is a demo
c.DELAY_MAX = 1000
c.MSG_QUEUE_MAX = N
c.set_callback(on_message)
c.set_callback_status(on_status)
say("%s %s, connecting" % (sys.implementation.name, ".".join(str(v) for v in sys.implementation.version[:3])))
c.connect(clean_session=False)
c.subscribe(TOPIC, 1)
down = False
t0 = ticks_ms()
i = 0
while i < N or c.things_to_do() or len(set(got)) < N:
    if ticks_diff(ticks_ms(), t0) > 60000:
        say("gave up after 60 s")
        break
    if c.is_conn_issue():
        if not down:
            e, place = c.conn_issue
            say("connection lost (%r in %s); %d in flight, %d queued" % (e, c.PLACES[place], len(c.inflight), len(c.msg_to_send)))
            down = True
        inflight, queued = len(c.inflight), len(c.msg_to_send)
        sp = c.reconnect()
        if not c.is_conn_issue():
            say("reconnected, session %s: re-sent %d in flight, then %d queued" % ("kept" if sp else "new", inflight, queued))
            down = False
    if i < N and ticks_diff(ticks_ms(), t0) > i * 50:  # a reading every 50 ms
        pids.append(c.publish(TOPIC, b"%d" % i, qos=1))
        i += 1
        if i % 20 == 0:
            say("published %d" % i)
    c.check_msg()
    c.send_queue()  # what waited while offline, as far as the window allows
    sleep_ms(2)
uniq = set(got)
say("published %d, confirmed by the broker %d, received back %d (%d duplicates: QoS 1 "
    "messages re-sent because an answer was lost), lost %d" % (N, len(set(delivered) & set(pids)), len(uniq), len(got) - len(uniq), N - len(uniq)))
c.disconnect()
sys.exit(0 if len(uniq) == N else 1)
