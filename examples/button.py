# robustness case 2: a button. A press matters, so it is sent with QoS 1 and kept
# through an outage, but only for 15 seconds: a light that switches on a minute after
# the press is worse than one that does not. Presses still queued after their deadline
# are taken back; the status callback tells which ones the broker got.
import time

from umqtt import errno
from umqtt.robust2 import MQTTClient
from umqtt.simple2 import ticks_ms, ticks_diff
from settings import SERVER, PORT, ROUNDS, TOPIC

DEADLINE_MS = 15000
pending = {}  # pid -> ticks_ms of the press


def on_status(pid, status):
    t = pending.pop(pid, None)
    if t is None:
        return
    if status == errno.SDELIVERED:
        print("press", pid, "delivered after", ticks_diff(ticks_ms(), t), "ms")
    elif status == errno.SDROPPED:
        print("press", pid, "dropped: the queue was full")


c = MQTTClient("example-button", SERVER, PORT, keepalive=30)
c.MSG_QUEUE_MAX = 20  # more presses than can wait out the deadline: none is dropped
c.set_callback_status(on_status)
c.connect(clean_session=False)
n = 0
while not ROUNDS or n < ROUNDS:
    if n % 20 == 0:  # stands for a real button press
        pending[c.publish(TOPIC + "/button", b"press", qos=1)] = ticks_ms()
    if c.is_conn_issue():
        c.reconnect()
    c.check_msg()
    c.send_queue()  # what waited while offline, as far as the window allows
    # take back the presses that are too old to matter and were not sent yet
    for m in [m for m in c.msg_to_send if m[4] in pending]:
        if ticks_diff(ticks_ms(), pending[m[4]]) > DEADLINE_MS:
            c.msg_to_send.remove(m)
            print("press", pending.pop(m[4]) and m[4], "given up")
    time.sleep(0.05)
    n += 1
c.disconnect()
